"""mmengine's Runner with the official codes' lr scaling rule: it counts gradient accumulation.

MAE, SdAE, dBOT and RC-MAE (and their fine-tuning scripts) all compute
``lr = blr * eff_batch_size / 256`` with ``eff_batch_size = batch_size * accum_iter *
world_size``. mmengine's ``auto_scale_lr`` scales by ``world_size * batch_size`` only, so a
recipe that accumulates gradients (RC-MAE ViT-B/L: 8 GPUs x 256 x 2) would train at half its
lr, and "use gradient accumulation on fewer GPUs" would silently change the lr.
:class:`RecipeRunner` fixes that; ``tools/train.py`` (:func:`build_runner`) uses it for every
config that names no other runner.
"""
import contextvars
import copy
from contextlib import contextmanager
from typing import Dict, Optional, Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from torch.nn.parallel import DistributedDataParallel
from torch.overrides import TorchFunctionMode

try:  # the tensor factories torch's own `with torch.device(...)` redirects
    from torch.utils._device import _device_constructors
except ImportError:  # pragma: no cover  (a torch without it: the common factories)
    def _device_constructors():
        return {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn,
                torch.randint, torch.tensor, torch.eye, torch.empty_strided}

RUNNER_TYPE = 'RecipeRunner'
_MODEL_DEVICE = contextvars.ContextVar('sdae_mm_model_device', default=None)


class _MetaParams(TorchFunctionMode):
    """Tensor factories default to the ``meta`` device, except the small helper ranges
    (``arange``, ``linspace``, ``logspace``) that module constructors read back with
    ``.item()`` or ``.tolist()`` (drop-path rates, position indices): those stay on the
    CPU."""

    _KEEP_ON_CPU = (torch.arange, torch.linspace, torch.logspace)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (func in _device_constructors() and func not in self._KEEP_ON_CPU
                and kwargs.get('device') is None):
            kwargs['device'] = 'meta'
        return func(*args, **kwargs)


def _device_context(device: str):
    return _MetaParams() if device == 'meta' else torch.device(device)


@contextmanager
def model_device(device: Optional[str]):
    """Within this context :class:`RecipeRunner` builds its model on ``device`` (e.g.
    ``'meta'``: parameters without storage) and, being built only to be read
    (``print_recipe.py``), neither dumps its config into the work dir nor logs the
    environment."""
    token = _MODEL_DEVICE.set(device)
    try:
        yield
    finally:
        _MODEL_DEVICE.reset(token)


def per_gpu_batch_size(dataloader) -> int:
    """Images per GPU and iteration of a train dataloader (built or config)."""
    if isinstance(dataloader, dict):
        return int(dataloader['batch_size'])
    return int(dataloader.batch_size)


def accumulative_counts(optim_wrapper) -> int:
    """Gradient accumulation steps of an optimizer wrapper (built or config)."""
    if isinstance(optim_wrapper, OptimWrapperDict):
        counts = {accumulative_counts(w) for w in optim_wrapper.values()}
        if len(counts) != 1:
            raise ValueError(f'optimizer wrappers with different accumulative_counts: {counts}')
        return counts.pop()
    if isinstance(optim_wrapper, OptimWrapper):
        return int(optim_wrapper._accumulative_counts)
    if isinstance(optim_wrapper, dict):
        if 'type' not in optim_wrapper and 'optimizer' not in optim_wrapper:
            # a dict of wrappers (constructor-built OptimWrapperDict)
            counts = {accumulative_counts(w) for w in optim_wrapper.values()
                      if isinstance(w, dict)}
            return counts.pop() if len(counts) == 1 else 1
        return int(optim_wrapper.get('accumulative_counts', 1))
    return 1


@RUNNERS.register_module()
class RecipeRunner(Runner):
    """:class:`mmengine.runner.Runner` whose ``auto_scale_lr`` scales by the *effective*
    batch, ``world_size x batch_size x accumulative_counts``, as the official
    ``eff_batch_size`` does (e.g. rc-mae ``run_pretrain.py:258-261``).

    ``auto_scale_lr.base_batch_size`` is then the effective batch the config's lr is meant
    for (RC-MAE ViT-B: 4096 = 8 x 256 x 2, lr 2.4e-3). Everything else is mmengine's.

    Within :func:`model_device` the model is built on that device; a model on the
    ``meta`` device (``print_recipe.py`` reads a recipe without allocating weights) stays
    there instead of being moved to the training device.
    """

    def build_model(self, model) -> nn.Module:
        """mmengine's model building, on the device of :func:`model_device` if set."""
        device = _MODEL_DEVICE.get()
        if device is None or isinstance(model, nn.Module):
            return super().build_model(model)
        with _device_context(device):
            return super().build_model(model)

    def effective_batch_size(self, world_size: Optional[int] = None,
                             optim_wrapper=None) -> int:
        """Images per optimizer step over all GPUs: GPUs x per GPU x accumulation."""
        world_size = self.world_size if world_size is None else int(world_size)
        optim_wrapper = self.optim_wrapper if optim_wrapper is None else optim_wrapper
        return (world_size * per_gpu_batch_size(self._train_dataloader) *
                accumulative_counts(optim_wrapper))

    def scale_lr(self,
                 optim_wrapper: OptimWrapper,
                 auto_scale_lr: Optional[Dict] = None,
                 world_size: Optional[int] = None) -> Optional[float]:
        """Scale every group's lr by ``effective batch / base_batch_size``.

        Args:
            optim_wrapper (OptimWrapper): The built optimizer wrapper(s).
            auto_scale_lr (dict, optional): ``dict(base_batch_size=..., enable=...)``.
            world_size (int, optional): Number of GPUs to scale for. Defaults to the
                runner's (``print_recipe.py`` asks for the GPU count a config declares).

        Returns:
            float | None: The ratio applied, or None when scaling is off.
        """
        if auto_scale_lr is None or not auto_scale_lr.get('enable', False):
            return None
        assert 'base_batch_size' in auto_scale_lr, \
            'Lack of `base_batch_size` in `auto_scale_lr`.'
        assert isinstance(optim_wrapper, OptimWrapper), \
            '`scale_lr should be called after building OptimWrapper'
        if self._param_schedulers_built():
            raise RuntimeError('`scale_lr` should be called before building ParamScheduler '
                               'because ParamScheduler will store initial lr from optimizer '
                               'wrappers')
        world = self.world_size if world_size is None else int(world_size)
        per_gpu = per_gpu_batch_size(self._train_dataloader)
        accum = accumulative_counts(optim_wrapper)
        real_bs = self.effective_batch_size(world, optim_wrapper)
        base_bs = auto_scale_lr['base_batch_size']
        ratio = float(real_bs) / float(base_bs)
        self.logger.info(
            f'LR is set based on an effective batch size of {base_bs}; this run\'s effective '
            f'batch size is {real_bs} ({world} GPUs x {per_gpu} per GPU x {accum} '
            f'accumulation steps): scaling the original LR by {ratio}.')
        wrappers = list(optim_wrapper.values()) if isinstance(
            optim_wrapper, OptimWrapperDict) else [optim_wrapper]
        for wrapper in wrappers:
            for group in wrapper.optimizer.param_groups:
                group['lr'] = group['lr'] * ratio
        return ratio

    def _param_schedulers_built(self) -> bool:
        from mmengine.optim.scheduler.param_scheduler import _ParamScheduler

        def built(schedulers):
            if isinstance(schedulers, dict):
                return False if 'type' in schedulers else any(
                    built(s) for s in schedulers.values())
            if isinstance(schedulers, list):
                return any(built(s) for s in schedulers)
            return isinstance(schedulers, _ParamScheduler)

        return built(self.param_schedulers)

    def build_visualizer(self, visualizer=None):
        """mmengine's, except for a runner built only to be read (:func:`model_device`): a
        plain visualizer of its own name without storage backends (configs that name
        theirs, e.g. mmdet's ``name='visualizer'``, would otherwise share one instance,
        and its save directory, with every later runner of the process)."""
        if _MODEL_DEVICE.get() is None:
            return super().build_visualizer(visualizer)
        from mmengine.visualization import Visualizer
        return Visualizer.get_instance(name=self._experiment_name)

    def dump_config(self) -> None:
        """mmengine's, except for a runner built only to be read (:func:`model_device`)."""
        if _MODEL_DEVICE.get() is None:
            super().dump_config()

    def _log_env(self, env_cfg: dict) -> None:
        if _MODEL_DEVICE.get() is None:
            super()._log_env(env_cfg)

    def wrap_model(self, model_wrapper_cfg: Optional[Dict],
                   model: nn.Module) -> Union[DistributedDataParallel, nn.Module]:
        """mmengine's wrapping, except that a model on the meta device stays as it is."""
        if any(p.is_meta for p in model.parameters()):
            if self.distributed:
                raise RuntimeError('a meta-device model cannot be trained or wrapped')
            return model
        return super().wrap_model(model_wrapper_cfg, model)


def build_runner(cfg) -> Runner:
    """Build the runner of a config as ``tools/train.py`` does: the config's
    ``runner_type`` when it names one, else :class:`RecipeRunner`."""
    cfg = copy.deepcopy(cfg)
    if 'runner_type' not in cfg:
        cfg.runner_type = RUNNER_TYPE
    return RUNNERS.build(cfg)


__all__ = ['RecipeRunner', 'build_runner', 'model_device', 'per_gpu_batch_size',
           'accumulative_counts']
