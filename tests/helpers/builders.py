"""Build the model and optim wrapper of a config cheaply, as a run builds them."""
import contextlib
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@contextlib.contextmanager
def meta_device():
    """Build modules on the meta device; ``torch.linspace`` stays on the CPU, since the
    drop-path rates are read from it with ``.item()``."""
    linspace = torch.linspace

    def cpu_linspace(*args, **kwargs):
        return linspace(*args, **dict(kwargs, device='cpu'))

    torch.linspace = cpu_linspace
    try:
        with torch.device('meta'):
            yield
    finally:
        torch.linspace = linspace


def build_from_config(path, scope):
    """(config, model on the meta device, optim wrapper of the config).

    The optimizer is built with ``mmengine.optim.build_optim_wrapper`` as
    ``Runner.build_optim_wrapper`` does; ``AmpOptimWrapper`` becomes ``OptimWrapper``
    (it needs a GPU; the param groups are the same). Detection backbones load no
    checkpoint.
    """
    cfg = Config.fromfile(osp.join(ROOT, path))
    model_cfg = copy.deepcopy(cfg.model)
    if scope == 'mmdet':
        model_cfg.backbone.checkpoint = None
    with DefaultScope.overwrite_default_scope(scope):
        if scope == 'mmseg':
            from mmseg.registry import MODELS
        elif scope == 'mmdet':
            from mmdet.registry import MODELS
        else:
            from mmpretrain.registry import MODELS
        with meta_device():
            model = MODELS.build(model_cfg)
        optim_cfg = copy.deepcopy(cfg.optim_wrapper)
        optim_cfg['type'] = 'OptimWrapper'  # AmpOptimWrapper needs a GPU; same groups
        optim_cfg.pop('loss_scale', None)
        wrapper = build_optim_wrapper(model, optim_cfg)
    return cfg, model, wrapper


def groups_by_param(optimizer):
    by_param = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            assert id(p) not in by_param, 'a parameter is in two groups'
            by_param[id(p)] = group
    return by_param
