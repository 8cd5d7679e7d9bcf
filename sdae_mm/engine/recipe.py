"""The *effective* training recipe of a config: what a run of it trains with.

A config's literals are not what a run gets: the Runner scales the lr for the batch it
sees (:class:`~sdae_mm.engine.runner.RecipeRunner` counts gradient accumulation), the
optimizer constructor splits parameters into lr/weight-decay groups, schedulers step per
iteration of the data loader, hooks index their own schedules, and drop path is spread
over blocks by the modules. :func:`effective_recipe` builds the Runner of a config exactly
as ``tools/train.py`` does (model on the ``meta`` device, no data), applies the Runner's
own lr scaling for a given GPU count, and reads every value back from the built objects:
optimizer groups, parameter schedulers (stepped as ``ParamSchedulerHook`` steps them),
:class:`TeacherEMAHook` (its own ``momentum_at``), :class:`DBOTStageHook`, the model's
drop-path modules, the optimizer wrapper. ``tools/analysis_tools/print_recipe.py`` prints
it; the tests compare it with the official values (docs/fidelity.md).

:func:`check_launch` is the launch check of ``tools/train.py``: it says before training
what changes when the effective batch differs from the one the config declares.
"""
import copy
import math
import os.path as osp
import re
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict
from mmengine.registry import PARAM_SCHEDULERS
from mmpretrain.utils import get_ori_model

from .runner import (RecipeRunner, accumulative_counts, build_runner, model_device,
                     per_gpu_batch_size)

#: Training-set sizes of the benchmarks (images).
DATASET_SIZES = {
    'imagenet-1k': 1_281_167,       # ILSVRC-2012 train
    'ade20k': 20_210,               # ADEChallengeData2016 training
    'coco-train2017': 117_266,      # train2017 images with annotations (mmdet filter_empty_gt)
}
DATASET_NOTES = {
    'imagenet-1k': 'ImageNet-1k train, 1,281,167 images',
    'ade20k': 'ADE20K train, 20,210 images',
    'coco-train2017': 'COCO train2017 images with annotations, 117,266 images',
}
#: Points of the run (fractions of all iterations) at which values are reported.
POINTS = (0., 0.25, 0.5, 0.75, 1.)
GPUS_PER_NODE = 8

_LAUNCH_RE = re.compile(r'(?:^|[_-])(\d+)xb(\d+)(?=[_-]|$)')
_ACCUM_RE = re.compile(r'(?:^|[_-])accum(\d+)(?=[_-]|$)')


class RecipeError(RuntimeError):
    """The launch does not run the recipe the config declares (``--strict-recipe``)."""


# --------------------------------------------------------------------------- launch
def declared_launch(cfg) -> Dict:
    """The launch a config declares.

    From its file name (mmpretrain convention ``{gpus}xb{per_gpu}`` plus ``accum{k}``, e.g.
    ``8xb256-accum2``: 8 GPUs x 256 images x 2 accumulation steps), else from
    ``auto_scale_lr.base_batch_size`` (the effective batch its lr is written for) divided
    by the per-GPU batch and accumulation of the config.

    Returns:
        dict: ``gpus``, ``nodes``, ``per_gpu``, ``accum``, ``total`` (None when nothing
        is declared) and ``source``.
    """
    name = osp.splitext(osp.basename(getattr(cfg, 'filename', None) or ''))[0]
    loader = cfg.get('train_dataloader') or {}
    per_gpu = loader.get('batch_size')
    accum = accumulative_counts(cfg.get('optim_wrapper') or {})
    launch = _LAUNCH_RE.search(name)
    if launch:
        gpus, per_gpu_named = int(launch.group(1)), int(launch.group(2))
        accum_m = _ACCUM_RE.search(name)
        accum_named = int(accum_m.group(1)) if accum_m else 1
        return dict(gpus=gpus, nodes=max(1, math.ceil(gpus / GPUS_PER_NODE)),
                    per_gpu=per_gpu_named, accum=accum_named,
                    total=gpus * per_gpu_named * accum_named,
                    source=f'config name ({launch.group(0).strip("_-")}'
                    f'{"-" + accum_m.group(0).strip("_-") if accum_m else ""})')
    base = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
    if base and per_gpu:
        gpus = base / (per_gpu * accum)
        if gpus == int(gpus) and gpus >= 1:
            gpus = int(gpus)
            return dict(gpus=gpus, nodes=max(1, math.ceil(gpus / GPUS_PER_NODE)),
                        per_gpu=int(per_gpu), accum=accum, total=int(base),
                        source=f'auto_scale_lr.base_batch_size={base}')
    return dict(gpus=None, nodes=None, per_gpu=per_gpu, accum=accum, total=None,
                source='nothing declared (no NxbM in the name, no auto_scale_lr)')


def dataset_of(cfg) -> Tuple[Optional[str], Optional[int]]:
    """``(name, size)`` of a config's training set, for the benchmarks this suite knows
    (ImageNet-1k, ADE20K, COCO train2017); ``(None, None)`` otherwise."""
    loader = cfg.get('train_dataloader') or {}
    dataset = loader.get('dataset') or {}
    while isinstance(dataset, dict) and 'dataset' in dataset:  # wrappers (RepeatDataset...)
        dataset = dataset['dataset']
    dtype = str(dataset.get('type', ''))
    root = str(dataset.get('data_root', '')).lower()
    ann = str(dataset.get('ann_file', '')).lower()
    if 'ADE20K' in dtype or 'ade' in root:
        return 'ade20k', DATASET_SIZES['ade20k']
    if 'Coco' in dtype or 'coco' in root:
        if 'val' in ann and 'train' not in ann:
            return None, None
        return 'coco-train2017', DATASET_SIZES['coco-train2017']
    if 'ImageNet' in dtype or 'imagenet' in root:
        return 'imagenet-1k', DATASET_SIZES['imagenet-1k']
    return None, None


def iters_per_epoch(dataset_size: int, world_size: int, per_gpu: int,
                    drop_last: bool, infinite: bool = False) -> int:
    """Data-loader length per rank: mmengine's ``DefaultSampler`` (``round_up``) gives each
    rank ``ceil(size / world)`` samples (as torch's ``DistributedSampler`` of the official
    code), batched with or without ``drop_last``. (mmengine's ``InfiniteSampler`` reports
    the whole dataset as its length, on every rank: ``infinite=True``.)"""
    per_rank = dataset_size if infinite else math.ceil(dataset_size / world_size)
    return per_rank // per_gpu if drop_last else math.ceil(per_rank / per_gpu)


def _is_infinite(loader) -> bool:
    sampler = (loader or {}).get('sampler') or {}
    kind = sampler.get('type', '') if isinstance(sampler, dict) else type(sampler).__name__
    kind = kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))
    return 'Infinite' in kind


def _loop_kind(train_cfg) -> str:
    train_cfg = train_cfg or {}
    loop = train_cfg.get('type')
    if loop is None:
        return 'epoch' if train_cfg.get('by_epoch', True) else 'iter'
    loop = loop if isinstance(loop, str) else getattr(loop, '__name__', str(loop))
    return 'iter' if 'Iter' in loop else 'epoch'


# --------------------------------------------------------------------------- building
@contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        yield


def _import_scope_modules(cfg) -> None:
    """Register sdae_mm's downstream modules when a config of their scope did not import
    them itself (tools/train.py relies on the config's ``custom_imports``)."""
    scope = cfg.get('default_scope')
    try:
        if scope == 'mmseg':
            import sdae_mm.downstream.seg  # noqa: F401
        elif scope == 'mmdet':
            import sdae_mm.downstream.det  # noqa: F401
    except ImportError:  # pragma: no cover  (mmcv without ops)
        pass


def _optim_wrapper_cfg(cfg, device: str) -> Tuple[Dict, Dict]:
    """The config's optimizer wrapper, buildable here, and what had to change for that."""
    ow = copy.deepcopy(cfg.optim_wrapper)
    changes = {}
    if ow.get('type', 'OptimWrapper') == 'AmpOptimWrapper' and (
            device == 'meta' or not torch.cuda.is_available()):
        # mmengine's AmpOptimWrapper asserts a GPU; the groups and lrs are the
        # constructor's and do not depend on it
        ow['type'] = 'OptimWrapper'
        for key in ('loss_scale', 'dtype', 'use_fsdp'):
            ow.pop(key, None)
        changes['type'] = 'AmpOptimWrapper built as OptimWrapper (no GPU needed)'
    optimizer = ow.get('optimizer', {})
    if device == 'meta' and optimizer.get('fused'):
        optimizer['fused'] = False  # torch has no fused kernel for meta tensors
        changes['fused'] = 'fused=True kept out on the meta device'
    return ow, changes


def build_recipe_runner(cfg, device: str = 'meta', work_dir: Optional[str] = None):
    """Build a config's Runner as ``tools/train.py`` does, on ``device`` (``'meta'``: no
    weights are allocated), in a scratch ``work_dir``. No data is read."""
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir or tempfile.mkdtemp(prefix='sdae_mm_recipe_')
    cfg.launcher = 'none'
    cfg.load_from = None
    cfg.resume = False
    cfg.log_level = 'ERROR'
    # its own logger and visualizer instances (mmengine keys them by experiment name), so
    # that a runner built later in the same second does not pick up this scratch one
    cfg.experiment_name = f'print_recipe_{osp.basename(cfg.work_dir)}'
    _import_scope_modules(cfg)
    with _quiet(), model_device(device):
        runner = build_runner(cfg)
    model = get_ori_model(runner.model)
    if device == 'meta' and not any(p.is_meta for p in model.parameters()):
        raise RuntimeError(f'the runner ({type(runner).__name__}) did not build the model on '
                           'the meta device')
    return runner


# --------------------------------------------------------------------------- reading
def drop_path_by_block(model: nn.Module) -> Dict[str, List[float]]:
    """Drop-path rate of every transformer block, per block list (``backbone.layers``,
    ``neck.decoder_blocks``, ...): the largest ``drop_prob`` of the drop-path modules
    inside each block (0 when it has none)."""
    out = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or not len(module):
            continue
        blocks = list(module)
        if not all(_is_block(b) for b in blocks):
            continue
        rates = []
        for block in blocks:
            probs = [float(m.drop_prob) for m in block.modules()
                     if 'DropPath' in type(m).__name__ and hasattr(m, 'drop_prob')]
            rates.append(max(probs) if probs else 0.)
        out[name] = rates
    return out


def _is_block(module: nn.Module) -> bool:
    kind = type(module).__name__
    if not any(word in kind for word in ('Layer', 'Block')):
        return False
    return any('Attention' in type(m).__name__ or n.endswith('attn')
               for n, m in module.named_modules())


_LAYER_RE = re.compile(r'(?:^|\.)(?:layers|blocks)\.(\d+)\.')
_EMBED_RE = re.compile(r'(?:^|\.)(cls_token|pos_embed|patch_embed|mask_token|dist_token|'
                       r'reg_token)(?:\.|$)')


def _layer_label(name: str) -> str:
    """Where a parameter sits in the ViT, for the per-layer lr table."""
    if _EMBED_RE.search(name):
        return 'embed'
    m = _LAYER_RE.search(name)
    if m and name.startswith(('backbone.', 'layers.', 'blocks.')):
        return f'block {int(m.group(1))}'
    return 'rest'


def param_groups(optimizer, model: nn.Module) -> List[Dict]:
    """Every optimizer group as ``lr``, ``weight_decay``, ``lr_scale`` (when the
    constructor set one), its tensors' names and element count."""
    names = {id(p): n for n, p in model.named_parameters()}
    groups = []
    for group in optimizer.param_groups:
        params = group['params']
        groups.append(dict(
            lr=float(group['lr']),
            weight_decay=float(group.get('weight_decay', 0.)),
            lr_scale=group.get('lr_scale'),
            names=[names.get(id(p), '?') for p in params],
            numel=int(sum(p.numel() for p in params))))
    return groups


def weight_decay_summary(groups: List[Dict]) -> List[Dict]:
    """Parameters per weight-decay value: tensors, elements, lr range, examples."""
    out = {}
    for g in groups:
        row = out.setdefault(g['weight_decay'], dict(
            weight_decay=g['weight_decay'], tensors=0, numel=0, lr_min=g['lr'],
            lr_max=g['lr'], names=[]))
        row['tensors'] += len(g['names'])
        row['numel'] += g['numel']
        row['lr_min'] = min(row['lr_min'], g['lr'])
        row['lr_max'] = max(row['lr_max'], g['lr'])
        row['names'] += g['names']
    return sorted(out.values(), key=lambda r: -r['weight_decay'])


def lr_per_layer(groups: List[Dict]) -> List[Dict]:
    """lr of each ViT layer (embeddings, block i, the rest), read from the groups."""
    layers = {}
    for g in groups:
        for name in g['names']:
            layers.setdefault(_layer_label(name), set()).add(g['lr'])

    def order(label):
        if label == 'embed':
            return -1
        if label.startswith('block '):
            return int(label.split()[1])
        return 10**6

    return [dict(layer=k, lr=sorted(layers[k])) for k in sorted(layers, key=order)]


_SCHEDULED_KEYS = ('lr', 'initial_lr', 'momentum', 'betas', 'initial_momentum',
                   'initial_betas')


def _proxy_optimizer(optimizer, extra_keys: Sequence[str] = ()
                     ) -> Tuple[torch.optim.Optimizer, List[int]]:
    """A parameter-free copy of the optimizer's groups (one per distinct set of
    hyper-parameters) for stepping the schedulers fast; and, per real group, the index
    of its proxy group."""
    keys, proxies, index = {}, [], []
    for group in optimizer.param_groups:
        hyper = {k: v for k, v in group.items() if k != 'params'}
        # groups that differ only in what no lr/momentum scheduler reads (weight decay,
        # constructor bookkeeping) follow the same trajectory
        key = repr(sorted((k, repr(v)) for k, v in hyper.items()
                          if k in _SCHEDULED_KEYS or k in extra_keys
                          or k.replace('initial_', '') in extra_keys))
        if key not in keys:
            keys[key] = len(proxies)
            proxies.append(dict(hyper, params=[torch.zeros(1, device='cpu')]))
        index.append(keys[key])
    proxy = torch.optim.Optimizer(proxies, {})
    return proxy, index


def build_schedulers(scheduler_cfg, optimizer, max_epochs: Optional[int], max_iters: int,
                     epoch_length: Optional[int]) -> list:
    """The config's parameter schedulers, built as ``Runner._build_param_scheduler`` does
    (default ``end`` = the train loop's length, ``convert_to_iter_based`` with the data
    loader's length)."""
    if scheduler_cfg is None:
        return []
    if isinstance(scheduler_cfg, dict) and 'type' not in scheduler_cfg:
        raise NotImplementedError('per-optimizer scheduler dicts are not supported')
    cfgs = scheduler_cfg if isinstance(scheduler_cfg, (list, tuple)) else [scheduler_cfg]
    schedulers = []
    with _quiet():
        for one in cfgs:
            one = copy.deepcopy(one)
            default_end = max_epochs if one.get('by_epoch', True) else max_iters
            if default_end is not None:
                one.setdefault('end', default_end)
            schedulers.append(PARAM_SCHEDULERS.build(
                one, default_args=dict(optimizer=optimizer, epoch_length=epoch_length or 1)))
    return schedulers


def simulate_schedule(schedulers: Sequence, optimizer, max_iters: int,
                      epoch_length: Optional[int], at: Sequence[int],
                      param_name: str = 'lr') -> Dict[int, List[float]]:
    """Step the schedulers through the run as mmengine's ``ParamSchedulerHook`` does
    (iteration-based ones after every iteration, epoch-based ones after every epoch) and
    return each group's ``param_name`` *used by* iteration ``k`` for each ``k`` in ``at``."""
    wanted = set(int(k) for k in at)
    last = max(wanted)
    per_iter = [s for s in schedulers if not s.by_epoch]
    per_epoch = [s for s in schedulers if s.by_epoch]
    out = {}
    groups = optimizer.param_groups
    with _quiet():
        for it in range(last + 1):
            if it in wanted:
                out[it] = [float(g[param_name]) for g in groups]
            for s in per_iter:
                s.step()
            if epoch_length and per_epoch and (it + 1) % epoch_length == 0:
                for s in per_epoch:
                    s.step()
    return out


def warmup_of(schedulers: Sequence, epoch_length: Optional[int]) -> Optional[Dict]:
    """The linear warm-up of a schedule, in iterations (per stage for dBOT's
    :class:`StagewiseCosineLR`)."""
    for s in schedulers:
        kind = type(s).__name__
        if hasattr(s, 'warmup_epochs') and hasattr(s, 'steps_per_epoch'):  # StagewiseCosine
            per = s.steps_per_epoch
            return dict(iters=int(round(s.warmup_epochs * per)), scheduler=kind,
                        per_stage=bool(getattr(s, 'per_stage', False)))
        if 'Linear' in kind and getattr(s, 'start_factor', 1.) < 1. and s.begin == 0:
            unit = 1 if not s.by_epoch else (epoch_length or 1)
            return dict(iters=int((s.end - s.begin) * unit), scheduler=kind,
                        start_factor=float(s.start_factor))
    return None


def _stub_runner(it: int, epoch_length: Optional[int], max_iters: int,
                 max_epochs: Optional[int]):
    epoch = it // epoch_length if epoch_length else 0
    return SimpleNamespace(iter=it, epoch=epoch, max_iters=max_iters, max_epochs=max_epochs)


def teacher_momentum(hook, points: List[Dict], epoch_length: Optional[int], max_iters: int,
                     max_epochs: Optional[int]) -> Dict:
    """Momentum of the EMA updates at the report points, from the hook's own
    ``momentum_at`` (the update of iteration ``k``, or of the epoch containing it)."""
    settings = dict(momentum=hook.momentum, end_momentum=hook.end_momentum,
                    update_interval=hook.update_interval, schedule_unit=hook.schedule_unit,
                    warmup=hook.warmup, warmup_momentum=hook.warmup_momentum)
    values = []
    for p in points:
        it = p['iter']
        batch_idx = it % epoch_length if epoch_length else it
        values.append(hook.momentum_at(_stub_runner(it, epoch_length, max_iters, max_epochs),
                                       batch_idx))
    updates = max_iters if hook.update_interval == 'iter' else max_epochs
    out = dict(settings, updates=updates, at=values)
    if hook.update_interval == 'iter' and hook.schedule_unit == 'epoch_step' and epoch_length:
        # the value restarts every epoch: its range within one epoch
        first = hook.momentum_at(_stub_runner(0, epoch_length, max_iters, max_epochs), 0)
        last_it = epoch_length - 1
        last = hook.momentum_at(_stub_runner(last_it, epoch_length, max_iters, max_epochs),
                                last_it)
        out['within_epoch'] = [first, last]
    return out


def _hooks(runner, name: str) -> list:
    return [h for h in runner.hooks if type(h).__name__ == name]


def amp_of(cfg, built) -> Dict:
    """Mixed precision of the config's optimizer wrapper."""
    ow = cfg.optim_wrapper
    kind = ow.get('type', 'OptimWrapper')
    if kind == 'AmpOptimWrapper':
        dtype = ow.get('dtype') or 'float16'
        return dict(wrapper=kind, dtype=str(dtype), loss_scale=ow.get('loss_scale', 'dynamic'))
    return dict(wrapper=kind if isinstance(kind, str) else kind.__name__, dtype='float32',
                loss_scale=None)


# --------------------------------------------------------------------------- recipe
def resolve_gpus(cfg, gpus: Optional[int] = None, nodes: Optional[int] = None) -> Dict:
    """GPU count to report for: ``gpus`` if given, else ``nodes x 8``, else the config's
    declared count (1 when it declares none)."""
    declared = declared_launch(cfg)
    if gpus is not None:
        source = 'command line (--gpus)'
    elif nodes is not None:
        gpus, source = nodes * GPUS_PER_NODE, f'command line (--nodes {nodes} x 8 GPUs)'
    elif declared['gpus'] is not None:
        gpus, source = declared['gpus'], declared['source']
    else:
        gpus, source = 1, 'default (the config declares no GPU count)'
    nodes = nodes if nodes is not None else max(1, math.ceil(gpus / GPUS_PER_NODE))
    return dict(gpus=int(gpus), nodes=int(nodes), source=source, declared=declared)


def effective_recipe(cfg, gpus: Optional[int] = None, nodes: Optional[int] = None,
                     dataset_size: Optional[int] = None, device: str = 'meta') -> Dict:
    """Everything a run of ``cfg`` on ``gpus`` GPUs effectively trains with.

    Args:
        cfg (Config): The config (``Config.fromfile``; its ``custom_imports`` done).
        gpus (int, optional): World size. Defaults to the config's declared count.
        nodes (int, optional): Nodes of 8 GPUs (used when ``gpus`` is not given).
        dataset_size (int, optional): Training images. Defaults to the benchmark's size
            (ImageNet-1k, ADE20K, COCO train2017), read from the dataset config.
        device (str): ``'meta'`` (default: no weights allocated) or ``'cpu'``.

    Returns:
        dict: The recipe (JSON-serialisable); see ``tools/analysis_tools/print_recipe.py``.
    """
    launch = resolve_gpus(cfg, gpus, nodes)
    work_dir = tempfile.mkdtemp(prefix='sdae_mm_recipe_')
    try:
        try:
            runner = build_recipe_runner(cfg, device=device, work_dir=work_dir)
        except Exception as err:  # noqa: BLE001  (a model that cannot be built on meta)
            if device != 'meta':
                raise
            print_log(f'print_recipe: building on the meta device failed ({err!r}); '
                      'building on the CPU', logger='current', level=30)
            device = 'cpu'
            runner = build_recipe_runner(cfg, device=device, work_dir=work_dir)
        return _read_recipe(cfg, runner, launch, dataset_size, device)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _read_recipe(cfg, runner, launch: Dict, dataset_size: Optional[int], device: str) -> Dict:
    world = launch['gpus']
    model = get_ori_model(runner.model)
    ow_cfg, ow_changes = _optim_wrapper_cfg(cfg, device)
    with _quiet():
        optim_wrapper = runner.build_optim_wrapper(ow_cfg)
    if isinstance(optim_wrapper, OptimWrapperDict):
        raise NotImplementedError('configs with several optimizers are not supported')
    optimizer = optim_wrapper.optimizer
    config_lr = float(optimizer.defaults['lr'])
    before = [float(g['lr']) for g in optimizer.param_groups]
    auto_scale = dict(cfg.get('auto_scale_lr') or {})
    if isinstance(runner, RecipeRunner):
        runner.scale_lr(optim_wrapper, auto_scale or None, world_size=world)
    else:  # another runner_type: its own rule for this world size
        saved = runner._world_size
        runner._world_size = world
        try:
            runner.scale_lr(optim_wrapper, auto_scale or None)
        finally:
            runner._world_size = saved
    after = [float(g['lr']) for g in optimizer.param_groups]
    ratio = next((a / b for a, b in zip(after, before) if b), 1.)

    loader = cfg.train_dataloader
    per_gpu = per_gpu_batch_size(loader)
    accum = accumulative_counts(optim_wrapper)
    total_batch = world * per_gpu * accum

    name, known = dataset_of(cfg)
    if dataset_size is not None:
        size, size_note = int(dataset_size), f'{int(dataset_size):,} images (--dataset-size)'
    elif known is not None:
        size, size_note = known, DATASET_NOTES[name]
    else:
        size, size_note = None, 'unknown (give --dataset-size)'
    loop = _loop_kind(cfg.train_cfg)
    drop_last = bool(loader.get('drop_last', False))
    # the data loader's length, as the Runner passes it to the schedulers
    epoch_length = iters_per_epoch(size, world, per_gpu, drop_last,
                                   _is_infinite(loader)) if size else None
    if loop == 'epoch':
        max_epochs = int(cfg.train_cfg.max_epochs)
        if epoch_length is None:
            raise ValueError('an epoch-based schedule needs the dataset size: '
                             'give --dataset-size')
        max_iters = max_epochs * epoch_length
        epochs = float(max_epochs)
    else:
        max_iters = int(cfg.train_cfg.max_iters)
        max_epochs = None
        epochs = max_iters * world * per_gpu / size if size else None
    optimizer_steps = math.ceil(max_iters / accum)

    # learning rate through the run
    scheduler_cfg = cfg.get('param_scheduler') or []
    scheduled = [one.get('param_name') for one in (
        scheduler_cfg if isinstance(scheduler_cfg, (list, tuple)) else [scheduler_cfg])
        if isinstance(one, dict) and one.get('param_name')]
    proxy, index = _proxy_optimizer(optimizer, scheduled)
    schedulers = build_schedulers(cfg.get('param_scheduler'), proxy, max_epochs, max_iters,
                                  epoch_length)
    point_iters = [min(int(round(f * max_iters)), max_iters - 1) for f in POINTS]
    lrs = simulate_schedule(schedulers, proxy, max_iters, epoch_length, point_iters)
    points = []
    base_index = max(range(len(after)), key=lambda i: after[i])
    for f, it in zip(POINTS, point_iters):
        group_lrs = [lrs[it][index[i]] for i in range(len(after))]
        if loop == 'epoch':
            epoch_at = it / epoch_length
        else:  # images seen / dataset size
            epoch_at = it * world * per_gpu / size if size else None
        points.append(dict(fraction=f, iter=it, epoch=epoch_at,
                           optimizer_step=it // accum, lr=group_lrs[base_index],
                           lr_min=min(group_lrs), lr_max=max(group_lrs)))
    warmup = warmup_of(schedulers, epoch_length)
    if warmup is not None:
        if loop == 'epoch':
            warmup['epochs'] = warmup['iters'] / epoch_length
        else:
            warmup['epochs'] = warmup['iters'] * world * per_gpu / size if size else None
        warmup['optimizer_steps'] = warmup['iters'] / accum

    groups = param_groups(optimizer, model)
    recipe = dict(
        config=getattr(cfg, 'filename', None),
        scope=cfg.get('default_scope'),
        runner=type(runner).__name__,
        device=device,
        launch=dict(gpus=world, nodes=launch['nodes'], gpus_source=launch['source'],
                    per_gpu_batch=per_gpu, accumulative_counts=accum, total_batch=total_batch,
                    declared=launch['declared']),
        dataset=dict(name=name, size=size, note=size_note),
        schedule=dict(loop=loop, max_epochs=max_epochs, epochs=epochs,
                      iters_per_epoch=epoch_length, max_iters=max_iters,
                      optimizer_steps_per_epoch=(
                          epoch_length / accum if loop == 'epoch' else
                          (size / total_batch if size else None)),
                      optimizer_steps=optimizer_steps, drop_last=drop_last,
                      schedulers=[type(s).__name__ for s in schedulers]),
        lr=dict(config_lr=config_lr, auto_scale_lr=auto_scale, scale_ratio=ratio,
                base_lr=config_lr * ratio, blr=config_lr * ratio * 256 / total_batch,
                group_min=min(after), group_max=max(after),
                per_layer=lr_per_layer(groups)),
        optimizer=dict(type=type(optimizer).__name__,
                       betas=list(optimizer.defaults['betas'])
                       if 'betas' in optimizer.defaults else None,
                       momentum=optimizer.defaults.get('momentum'),
                       groups=len(groups), built_with=ow_changes),
        weight_decay=weight_decay_summary(groups),
        warmup=warmup,
        lr_at=points,
        amp=amp_of(cfg, optim_wrapper),
        clip_grad=(dict(optim_wrapper.clip_grad_kwargs)
                   if getattr(optim_wrapper, 'clip_grad_kwargs', None) else None),
        drop_path=drop_path_by_block(model),
        teacher_momentum=None,
        stages=None,
    )
    ema = _hooks(runner, 'TeacherEMAHook')
    if ema:
        recipe['teacher_momentum'] = teacher_momentum(ema[0], points, epoch_length, max_iters,
                                                      max_epochs)
    stage_hooks = _hooks(runner, 'DBOTStageHook')
    if stage_hooks and max_epochs:
        hook = stage_hooks[0]
        switches = hook._switch_epochs(max_epochs)
        depth = getattr(model, 'teacher_depth', None)
        stages = []
        bounds = [0] + switches + [max_epochs]
        for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
            stages.append(dict(stage=k, epochs=[a, b],
                               iters=[a * epoch_length, b * epoch_length],
                               teacher_depth=depth(k) if depth else None))
        recipe['stages'] = dict(stage_epochs=list(hook.stage_epochs), switch_after_epochs=switches,
                                reset_optimizer=hook.reset_optimizer, stages=stages)
    return recipe


# --------------------------------------------------------------------------- printing
def _fmt(v, digits=6) -> str:
    if v is None:
        return '-'
    if isinstance(v, float):
        return f'{v:.{digits}g}'
    return str(v)


def format_recipe(r: Dict) -> str:
    """The recipe as text, one value per line."""
    L = r['launch']
    d = L['declared']
    s = r['schedule']
    lines = [f"config: {r['config']}",
             f"scope: {r['scope']}   runner: {r['runner']}   model built on: {r['device']}",
             '',
             f"GPUs: {L['gpus']} ({L['nodes']} node(s); {L['gpus_source']})",
             f"total batch: {L['gpus']} GPUs x {L['per_gpu_batch']} per GPU x "
             f"{L['accumulative_counts']} accumulation = {L['total_batch']}"]
    if d['total'] is not None:
        same = 'same' if d['total'] == L['total_batch'] else 'DIFFERENT'
        lines.append(f"declared: {d['gpus']} x {d['per_gpu']} x {d['accum']} = {d['total']} "
                     f"({d['source']}): {same}")
    lines += ['',
              f"dataset: {r['dataset']['note']}",
              f"schedule: {s['loop']}-based, "
              + (f"{s['max_epochs']} epochs x {s['iters_per_epoch']} iterations"
                 if s['loop'] == 'epoch' else
                 f"{s['max_iters']} iterations = {_fmt(s['epochs'], 5)} epochs"),
              f"iterations in all: {s['max_iters']:,}; optimizer steps per epoch: "
              f"{_fmt(s['optimizer_steps_per_epoch'])}; in all: {s['optimizer_steps']:,}",
              f"schedulers: {', '.join(s['schedulers']) or '-'}"]
    lr = r['lr']
    scale = lr['auto_scale_lr']
    lines += ['',
              f"lr: config {_fmt(lr['config_lr'])}, auto_scale_lr "
              f"{'on' if scale.get('enable') else 'off'} (base batch "
              f"{scale.get('base_batch_size', '-')}), x {_fmt(lr['scale_ratio'])} "
              f"-> base lr {_fmt(lr['base_lr'])} (= blr {_fmt(lr['blr'])} x "
              f"{L['total_batch']} / 256)",
              f"lr over groups: min {_fmt(lr['group_min'])}, max {_fmt(lr['group_max'])}"]
    if len({v for x in lr['per_layer'] for v in x['lr']}) > 1:
        lines.append('lr per layer: ' + '; '.join(
            f"{x['layer']} {'/'.join(_fmt(v, 4) for v in x['lr'])}" for x in lr['per_layer']))
    o = r['optimizer']
    lines.append(f"optimizer: {o['type']}"
                 + (f", betas {tuple(o['betas'])}" if o['betas'] else '')
                 + (f", momentum {o['momentum']}" if o['momentum'] is not None else '')
                 + f", {o['groups']} groups"
                 + (f" ({'; '.join(o['built_with'].values())})" if o['built_with'] else ''))
    for w in r['weight_decay']:
        example = ', '.join(w['names'][:4]) + (', ...' if len(w['names']) > 4 else '')
        lines.append(f"  weight decay {_fmt(w['weight_decay'])}: {w['tensors']} tensors, "
                     f"{w['numel']:,} elements, lr {_fmt(w['lr_min'], 4)}"
                     f"{'' if w['lr_min'] == w['lr_max'] else '..' + _fmt(w['lr_max'], 4)} "
                     f"({example})")
    wu = r['warmup']
    if wu:
        lines.append(f"warm-up: {wu['iters']:,} iterations = {_fmt(wu['epochs'], 5)} epochs "
                     f"({wu['scheduler']}{', per stage' if wu.get('per_stage') else ''})")
    else:
        lines.append('warm-up: none')
    lines.append('lr at:')
    for p in r['lr_at']:
        extra = '' if p['lr_min'] == p['lr_max'] else \
            f" (groups {_fmt(p['lr_min'], 4)}..{_fmt(p['lr_max'], 4)})"
        lines.append(f"  {int(p['fraction'] * 100):>3d} % (iteration {p['iter']:,}, epoch "
                     f"{_fmt(p['epoch'], 7)}): {_fmt(p['lr'])}{extra}")
    tm = r['teacher_momentum']
    if tm:
        lines.append(f"teacher EMA: every {tm['update_interval']} ({tm['updates']:,} updates), "
                     f"schedule_unit={tm['schedule_unit']}, {tm['momentum']} -> "
                     f"{tm['end_momentum']}")
        lines.append('  momentum at 0/25/50/75/100 %: '
                     + ', '.join(f'{m:.8f}' for m in tm['at']))
        if 'within_epoch' in tm:
            a, b = tm['within_epoch']
            lines.append(f'  within every epoch: {a:.10f} .. {b:.10f}')
    st = r['stages']
    if st:
        lines.append(f"dBOT stages: switch after epochs {st['switch_after_epochs']} "
                     f"(reset_optimizer={st['reset_optimizer']})")
        for stage in st['stages']:
            lines.append(f"  stage {stage['stage']}: epochs {stage['epochs'][0]}-"
                         f"{stage['epochs'][1]}, iterations {stage['iters'][0]:,}-"
                         f"{stage['iters'][1]:,}, teacher depth {stage['teacher_depth']}")
    a = r['amp']
    lines.append(f"AMP: {a['wrapper']}, {a['dtype']}"
                 + (f", loss scale {a['loss_scale']}" if a['loss_scale'] else ''))
    lines.append(f"grad clipping: {r['clip_grad'] or 'none'}")
    lines.append('drop path per block:')
    if not r['drop_path']:
        lines.append('  (no transformer blocks found)')
    for name, rates in r['drop_path'].items():
        lines.append(f"  {name} ({len(rates)}): " + ' '.join(f'{v:.4g}' for v in rates))
    return '\n'.join(lines)


# --------------------------------------------------------------------------- launch check
def launch_differences(cfg, world_size: int) -> Optional[str]:
    """What a run of ``cfg`` on ``world_size`` GPUs changes against the launch the config
    declares, or None when the effective total batch is the declared one."""
    declared = declared_launch(cfg)
    if declared['total'] is None:
        return None
    per_gpu = per_gpu_batch_size(cfg.train_dataloader)
    accum = accumulative_counts(cfg.optim_wrapper)
    total = world_size * per_gpu * accum
    if total == declared['total']:
        return None
    lines = [f"this run's effective batch is {world_size} GPU(s) x {per_gpu} per GPU x {accum} "
             f"accumulation = {total}, but the config declares {declared['gpus']} x "
             f"{declared['per_gpu']} x {declared['accum']} = {declared['total']} "
             f"({declared['source']})."]
    lr = cfg.optim_wrapper.get('optimizer', {}).get('lr')
    scale = cfg.get('auto_scale_lr') or {}
    runner_type = cfg.get('runner_type', 'RecipeRunner')
    if scale.get('enable'):
        counted = total if runner_type == 'RecipeRunner' else world_size * per_gpu
        ratio = counted / scale['base_batch_size']
        lines.append(f"lr: scaled by auto_scale_lr ({runner_type}): x {ratio:.6g} "
                     f"(base batch {scale['base_batch_size']}), {lr} -> {lr * ratio:.6g}.")
    else:
        lines.append(f'lr: NOT scaled (auto_scale_lr is off): {lr} is the lr of the declared '
                     f"batch {declared['total']}; pass --auto-scale-lr to scale it.")
    name, size = dataset_of(cfg)
    if _loop_kind(cfg.train_cfg) == 'iter':
        iters = int(cfg.train_cfg.max_iters)
        if size:
            lines.append(
                f'schedule: {iters:,} iterations cover {iters * world_size * per_gpu / size:.4g} '
                f'epochs of {DATASET_NOTES[name]} (declared: '
                f"{iters * declared['gpus'] * declared['per_gpu'] / size:.4g} epochs).")
        else:
            lines.append(f'schedule: {iters:,} iterations now see {total / declared["total"]:.4g} '
                         'x the images the declared launch sees.')
    else:
        line = f'schedule: {cfg.train_cfg.max_epochs} epochs either way'
        if size:
            now = iters_per_epoch(size, world_size, per_gpu,
                                  bool(cfg.train_dataloader.get('drop_last', False)))
            then = iters_per_epoch(size, declared['gpus'], declared['per_gpu'],
                                   bool(cfg.train_dataloader.get('drop_last', False)))
            line += (f'; optimizer steps per epoch {now / accum:.6g} instead of '
                     f"{then / declared['accum']:.6g}")
        lines.append(line + '.')
    return ' '.join(lines)


def check_launch(runner, strict: bool = False) -> Optional[str]:
    """Before training: warn when the effective batch differs from the declared one (and
    say what that changes); with ``strict``, refuse to start (:class:`RecipeError`)."""
    cfg = runner.cfg
    if cfg.get('train_dataloader') is None or cfg.get('optim_wrapper') is None:
        return None
    message = launch_differences(cfg, runner.world_size)
    if message is None:
        return None
    if strict:
        raise RecipeError(message + ' Refusing to start (--strict-recipe).')
    print_log('recipe check: ' + message, logger='current', level=30)
    return message


__all__ = ['DATASET_SIZES', 'RecipeError', 'declared_launch', 'dataset_of', 'iters_per_epoch',
           'build_recipe_runner', 'drop_path_by_block', 'effective_recipe', 'format_recipe',
           'launch_differences', 'check_launch', 'simulate_schedule', 'build_schedulers',
           'resolve_gpus']
