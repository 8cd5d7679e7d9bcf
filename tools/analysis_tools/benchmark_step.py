"""Time, memory and FLOPs of one pretraining step of SdAE, dBOT, RC-MAE or MAE.

A step is what the training loop runs per iteration, minus data loading and the data
preprocessor: a synthetic batch (normalised random images, a mask ``ids_shuffle =
argsort(rand)`` with the visible count of the method's mask generator) goes through
``model.loss`` and ``model.parse_losses``, the optimizer wrapper of the method's config
does the backward pass and the AdamW step, and the teacher is updated as the method's
hook would (EMA for SdAE and RC-MAE, nothing per step for dBOT and MAE).

The models are built from the methods' ViT-B configs with the architecture and input
size swapped (:func:`load_benchmark_config`), so the figures are those of what users run.

Examples (docs/speed.md)::

    # SdAE ViT-S/16, batch 8, 224, fp32 on 2 CPU threads
    python tools/analysis_tools/benchmark_step.py --algo sdae --arch s --batch-size 8 \\
        --threads 2 --iters 10 --warmup 3 --json work_dirs/bench/sdae_s_cpu.json
    # the same with the teacher on the whole image instead of its fold views
    python tools/analysis_tools/benchmark_step.py --algo sdae --arch s --batch-size 8 \\
        --threads 2 --teacher-views full
    # ViT-B on a GPU with the fastest settings
    python tools/analysis_tools/benchmark_step.py --algo sdae --arch b --batch-size 96 \\
        --device cuda --amp bf16 --compile --iters 50 --warmup 10 --json sdae_b_gpu.json
"""
import argparse
import copy
import json
import logging
import os
import os.path as osp
import platform
import resource
import statistics
import sys
import time
from contextlib import contextmanager, nullcontext
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # run from a source tree without `pip install -e .`
    sys.path.insert(0, ROOT)

ARCHS = {'t': 'deit-tiny', 's': 'deit-small', 'b': 'base', 'l': 'large'}
ALGO_CONFIGS = {
    'sdae': 'configs/sdae/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py',
    'dbot': 'configs/dbot/dbot_vit-base-p16_32xb128-amp-coslr-1600e_in1k.py',
    'rc_mae': 'configs/rc_mae/rc_mae_vit-base-p16_8xb256-accum2-amp-coslr-1600e_in1k.py',
    'mae': 'configs/mae/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py',
}
AMP_DTYPES = {'none': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}
TEACHER_VIEWS = ('folds', 'full')
BREAKDOWN_KEYS = ('student_forward', 'teacher_forward', 'backward', 'optimizer',
                  'teacher_update')
# Dense (no sparsity) tensor-core peaks in TFLOP/s, for model FLOP utilisation.
GPU_PEAK_TFLOPS = {
    'H200': {'bf16': 989.4, 'fp16': 989.4, 'none': 66.9},
    'H100 PCIe': {'bf16': 756.0, 'fp16': 756.0, 'none': 51.2},
    'H100': {'bf16': 989.4, 'fp16': 989.4, 'none': 66.9},
    'A100': {'bf16': 312.0, 'fp16': 312.0, 'none': 19.5},
}
TEACHER_METHODS = ('forward', 'forward_views', 'forward_tokens', 'forward_masked')


# ------------------------------------------------------------------------------ config
def arch_settings(arch) -> dict:
    """``embed_dims``, ``num_layers``, ... of an mmpretrain ViT arch name or dict."""
    from mmpretrain.models.backbones import VisionTransformer
    if isinstance(arch, str):
        key = arch.lower()
        if key not in VisionTransformer.arch_zoo:
            raise KeyError(f'unknown ViT arch {arch!r}')
        return dict(VisionTransformer.arch_zoo[key])
    return dict(arch)


def mask_ratio_of(cfg) -> float:
    """The mask ratio of the config's mask generator (0.75 when it names none)."""
    pipelines = [cfg.get('train_pipeline', None)]
    loader = cfg.get('train_dataloader', None)
    if loader is not None:
        pipelines.append(loader.get('dataset', {}).get('pipeline', None))
    for pipeline in pipelines:
        for step in pipeline or []:
            if isinstance(step, dict) and 'mask_ratio' in step:
                return float(step['mask_ratio'])
    backbone = cfg.model.get('backbone', {})
    return float(backbone.get('mask_ratio', 0.75))


def adapt_model_cfg(cfg, arch: str, img_size: int) -> None:
    """Swap the ViT architecture and input size of ``cfg.model`` in place.

    The encoders (student and teacher) take ``arch`` and ``img_size``; the decoder takes
    the new number of patches and encoder width, and, where it predicts encoder features
    (SdAE, dBOT), the new output width. SdAE's ``num_teacher_tokens`` keeps its share of
    the patches (147 / 196 at 224), capped at the masked count and rounded down to a
    multiple of ``num_folds``; dBOT's teacher depths that equal the encoder depth follow
    the new depth. The decoder's own width and depth stay those of the config (the
    official code uses a 512-d, 8-block decoder for ViT-S, -B and -L alike).
    """
    if arch not in ARCHS:
        raise ValueError(f'arch must be one of {sorted(ARCHS)}, got {arch!r}')
    model = cfg.model
    backbone = model.backbone
    patch = int(backbone.get('patch_size', 16))
    if img_size % patch:
        raise ValueError(f'img_size={img_size} is not a multiple of the patch size {patch}')
    old = arch_settings(backbone.get('arch', 'b'))
    old_patches = (int(backbone.get('img_size', 224)) // patch)**2
    new = arch_settings(ARCHS[arch])
    num_patches = (img_size // patch)**2
    width = new['embed_dims']

    backbone.arch = ARCHS[arch]
    backbone.img_size = img_size
    if model.type == 'MAE':  # mmpretrain's MAE: MAEViT + MAEPretrainDecoder
        model.neck.num_patches = num_patches
        model.neck.embed_dim = width
        return

    teacher = model.get('teacher', None)
    if isinstance(teacher, dict):
        teacher.arch = ARCHS[arch]
        teacher.img_size = img_size
    # a pixel-reconstruction head (MAE, RC-MAE) names the patch size; a feature
    # distillation head (SdAE, dBOT) predicts the teacher's features
    predicts_pixels = 'patch_size' in model.get('head', {})
    for key in ('neck', 'teacher_neck'):
        neck = model.get(key, None)
        if not isinstance(neck, dict):
            continue
        neck.num_patches = num_patches
        neck.in_channels = width
        if not predicts_pixels:
            neck.out_channels = width
    if model.get('num_teacher_tokens', None) is not None:
        folds = int(model.get('num_folds', 1))
        num_masked = num_patches - int(num_patches * (1 - mask_ratio_of(cfg)))
        share = model.num_teacher_tokens / old_patches
        n = min(int(round(share * num_patches)), num_masked)
        model.num_teacher_tokens = max(folds, n - n % folds)
    if model.get('teacher_depths', None) is not None:
        model.teacher_depths = [
            new['num_layers'] if d == old['num_layers'] else min(d, new['num_layers'])
            for d in model.teacher_depths
        ]


def parse_cfg_options(items):
    """``--cfg-options`` ``key=value`` strings to a dict, values parsed as mmengine's
    ``DictAction`` does (None for none)."""
    if not items:
        return None
    from mmengine.config import DictAction
    options = {}
    for item in items:
        if '=' not in item:
            raise ValueError(f'--cfg-options needs KEY=VALUE, got {item!r}')
        key, value = item.split('=', 1)
        options[key] = DictAction._parse_iterable(value)
    return options


def load_benchmark_config(algo: str,
                          arch: str = 's',
                          img_size: int = 224,
                          config: Optional[str] = None,
                          cfg_options: Optional[dict] = None):
    """The method's config with ``arch`` and ``img_size`` swapped in, then
    ``cfg_options`` merged (mmengine ``--cfg-options`` style keys)."""
    from mmengine.config import Config
    if config is None:
        if algo not in ALGO_CONFIGS:
            raise ValueError(f'algo must be one of {sorted(ALGO_CONFIGS)}, got {algo!r}')
        config = osp.join(ROOT, ALGO_CONFIGS[algo])
    if not osp.isfile(config):
        raise FileNotFoundError(f'config of {algo!r} not found: {config}')
    cfg = Config.fromfile(config)
    adapt_model_cfg(cfg, arch, img_size)
    if cfg_options:
        from sdae_mm.utils.cfg_options import merge_cfg_options
        merge_cfg_options(cfg, cfg_options)
    return cfg


# ------------------------------------------------------------------------------- model
def build_model(cfg, device: torch.device) -> nn.Module:
    """Build and initialise ``cfg.model`` (mmpretrain scope) in training mode."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import sdae_mm  # noqa: F401  (registers the algorithms)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    return model.to(device).train()


def build_optim_wrapper(cfg, model: nn.Module, amp: str, device: torch.device):
    """The config's optimizer wrapper (constructor, AdamW, param-wise settings), as a
    plain ``OptimWrapper`` (fp32, or bf16 autocast on CPU, where mmengine's
    ``AmpOptimWrapper`` does not run) or an ``AmpOptimWrapper`` on GPU: fp16 with the
    config's (dynamic) loss scaler, bf16 without loss scaling. One optimizer step per
    step (``accumulative_counts`` forced to 1)."""
    from mmengine.optim import build_optim_wrapper as mm_build
    wrapper = copy.deepcopy(cfg.optim_wrapper)
    wrapper['accumulative_counts'] = 1
    if amp == 'none' or device.type != 'cuda':
        wrapper['type'] = 'OptimWrapper'
        wrapper.pop('loss_scale', None)
        wrapper.pop('dtype', None)
    elif amp == 'fp16':
        wrapper.update(type='AmpOptimWrapper', dtype='float16')
        wrapper.setdefault('loss_scale', 'dynamic')
    else:
        # bf16 has float32's exponent range: no loss scaling (a disabled GradScaler
        # makes scale/unscale/step plain calls, without the per-step inf check)
        wrapper.update(type='AmpOptimWrapper', dtype='bfloat16',
                       loss_scale=dict(enabled=False))
    return mm_build(model, wrapper)


def teacher_ema_momentum(cfg) -> Optional[float]:
    """Momentum of the config's ``TeacherEMAHook`` (None when it has none)."""
    for hook in cfg.get('custom_hooks', []) or []:
        if hook.get('type') == 'TeacherEMAHook':
            return float(hook.get('momentum', 0.96))
    return None


def compile_blocks(model: nn.Module, **kwargs) -> int:
    """``torch.compile`` every transformer block in place (regional compilation: each
    block of the student encoder, decoder and teacher is compiled, the Python around
    them stays eager, so the token-subset forwards keep working). Returns the number of
    blocks compiled.

    mmcv's ``DropPath`` branches on its rate (``if drop_prob == 0.``), which mmpretrain
    sets from a numpy array: as a numpy scalar (or a symbolic float) the branch breaks
    every block into pieces. The rates are therefore made Python floats (the same
    values) and floats specialised (process-wide ``specialize_float=True``); the
    recompile limit is raised to cover one graph per block (the blocks of a
    stochastic-depth encoder have different rates, the teacher's and the decoder's
    blocks other shapes). Shapes are static (``dynamic=False``): the student, teacher
    and decoder sequences each get their own kernels.
    """
    import torch._dynamo.config as dynamo_config
    from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
    blocks = [m for m in model.modules() if isinstance(m, TransformerEncoderLayer)]
    if not blocks:
        raise ValueError(f'{type(model).__name__} has no transformer block to compile')
    for block in blocks:
        for module in block.modules():
            if hasattr(module, 'drop_prob'):
                module.drop_prob = float(module.drop_prob)
    dynamo_config.specialize_float = True
    for name in ('recompile_limit', 'cache_size_limit'):
        if hasattr(dynamo_config, name):
            setattr(dynamo_config, name, max(getattr(dynamo_config, name), 4 * len(blocks)))
    kwargs.setdefault('dynamic', False)
    for block in blocks:
        block.compile(**kwargs)
    return len(blocks)


def use_full_image_teacher(model: nn.Module) -> None:
    """Make SdAE's teacher encode the whole image (all ``L`` patches and the cls token as
    one sequence) and then gather the patches the loss needs, instead of encoding only
    those patches in fold views: the reference for the multi-fold saving."""
    from sdae_mm.models.utils import gather_tokens
    teacher = getattr(model, 'teacher', None)
    if teacher is None or not hasattr(teacher, 'forward_views') or \
            not hasattr(model, 'num_folds'):
        raise ValueError("teacher_views='full' is for SdAE's fold-view teacher, got "
                         f'{type(model).__name__}')
    views = teacher.forward_views

    def full_views(x, ids=None, num_views=1):
        out = views(x, None, 1)
        return out if ids is None else gather_tokens(out, ids)

    teacher.forward_views = full_views


def make_batch(batch_size: int, img_size: int, num_patches: int, mask_ratio: float,
               device: torch.device, generator: torch.Generator):
    """Normalised random images and data samples with ``ids_shuffle`` and ``mask``
    (``int(L * (1 - mask_ratio))`` visible patches, as the mask generators draw)."""
    from mmpretrain.structures import DataSample
    num_visible = int(num_patches * (1 - mask_ratio))
    inputs = torch.randn(batch_size, 3, img_size, img_size, generator=generator)
    ids_shuffle = torch.argsort(torch.rand(batch_size, num_patches, generator=generator), 1)
    mask = torch.ones(batch_size, num_patches, dtype=torch.uint8)
    mask.scatter_(1, ids_shuffle[:, :num_visible], 0)
    samples = []
    for ids, m in zip(ids_shuffle, mask):
        sample = DataSample()
        sample.set_field(ids, 'ids_shuffle')
        sample.set_field(m, 'mask')
        samples.append(sample)
    return inputs.to(device), samples


# ------------------------------------------------------------------------------ timing
def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class TeacherProbe:
    """Times (and, when asked, counts the FLOPs of) the teacher's forwards inside
    ``model.loss`` by wrapping the teacher modules' forward methods on the instances.

    Only the outermost call is measured (RC-MAE's teacher calls its encoder and then its
    decoder: both are measured; a forward calling another wrapped forward is not
    counted twice).
    """

    def __init__(self, model: nn.Module, device: torch.device, sync: bool) -> None:
        self.device = device
        self.sync = sync
        self.seconds = 0.
        self.flops = 0
        self.count_flops = False
        self._depth = 0
        self._modules = [m for m in (getattr(model, 'teacher', None),
                                     getattr(model, 'teacher_neck', None))
                         if isinstance(m, nn.Module)]
        self._saved: List[tuple] = []

    def reset(self) -> None:
        self.seconds = 0.
        self.flops = 0

    def _wrap(self, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            try:
                if self.sync:
                    sync(self.device)
                start = time.perf_counter()
                if self.count_flops:
                    with flop_counter() as counter:
                        out = fn(*args, **kwargs)
                    self.flops += counter.get_total_flops()
                else:
                    out = fn(*args, **kwargs)
                if self.sync:
                    sync(self.device)
                self.seconds += time.perf_counter() - start
                return out
            finally:
                self._depth -= 1

        return timed

    def install(self) -> 'TeacherProbe':
        for module in self._modules:
            for name in TEACHER_METHODS:
                if hasattr(module, name):
                    own = name in module.__dict__
                    fn = getattr(module, name)
                    self._saved.append((module, name, own, fn))
                    setattr(module, name, self._wrap(fn))
        return self

    def remove(self) -> None:
        for module, name, own, fn in reversed(self._saved):
            if own:
                setattr(module, name, fn)
            else:
                delattr(module, name)
        self._saved = []


def flop_counter():
    """``FlopCounterMode`` that also counts the fused CPU attention kernels (torch's
    table only has formulas for the CUDA ones; the CPU kernels do the same matmuls)."""
    from torch.utils import flop_counter as fc
    aten = torch.ops.aten
    mapping = {}
    for name, formula in (('_scaled_dot_product_flash_attention_for_cpu', fc.sdpa_flop),
                          ('_scaled_dot_product_flash_attention_for_cpu_backward',
                           fc.sdpa_backward_flop)):
        op = getattr(aten, name, None)
        if op is not None and op not in fc.flop_registry:
            mapping[op] = getattr(formula, '__wrapped__', formula)
    return fc.FlopCounterMode(display=False, custom_mapping=mapping)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA allocator peak on GPU; the process's maximum resident set size on CPU."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if platform.system() == 'Darwin' else rss / 2**10


def cpu_model_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def machine_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and logical CPU count."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'{cpu_model_name()}, {os.cpu_count()} logical CPUs'


def gpu_peak_tflops(device: torch.device, amp: str) -> Optional[float]:
    """The GPU's dense peak for ``amp`` (None when unknown)."""
    if device.type != 'cuda':
        return None
    name = torch.cuda.get_device_name(device)
    for key in sorted(GPU_PEAK_TFLOPS, key=len, reverse=True):
        if key in name:
            return GPU_PEAK_TFLOPS[key][amp]
    return None


class StepRunner:
    """One pretraining step of ``model`` with ``optim_wrapper``, timed by phase."""

    def __init__(self, model: nn.Module, optim_wrapper, device: torch.device, amp: str,
                 ema_momentum: Optional[float], breakdown: bool) -> None:
        self.model = model
        self.optim_wrapper = optim_wrapper
        self.device = device
        self.ema_momentum = ema_momentum
        self.breakdown = breakdown
        dtype = AMP_DTYPES[amp]
        if dtype is not None and device.type != 'cuda':
            self.autocast = lambda: torch.autocast(device.type, dtype=dtype)
        else:
            self.autocast = nullcontext
        self.probe = TeacherProbe(model, device, sync=breakdown)
        if breakdown:
            self.probe.install()

    def _mark(self, times: list) -> None:
        if self.breakdown:
            sync(self.device)
            times.append(time.perf_counter())

    def forward_loss(self, inputs, samples) -> torch.Tensor:
        with self.optim_wrapper.optim_context(self.model), self.autocast():
            losses = self.model.loss(inputs, samples)
        loss, _ = self.model.parse_losses(losses)
        return loss

    def update_teacher(self) -> None:
        if self.ema_momentum is not None:
            self.model.update_teacher(self.ema_momentum)

    def step(self, inputs, samples) -> Dict[str, float]:
        """Run one step; returns seconds per phase (``step``, wall, and ``cpu``, this
        process's CPU time, always)."""
        self.probe.reset()
        sync(self.device)
        cpu_start = time.process_time()
        times = [time.perf_counter()]
        loss = self.forward_loss(inputs, samples)
        self._mark(times)
        self.optim_wrapper.backward(loss)
        self._mark(times)
        self.optim_wrapper.step()
        self.optim_wrapper.zero_grad()
        self._mark(times)
        self.update_teacher()
        sync(self.device)
        end = time.perf_counter()
        out = dict(step=end - times[0], cpu=time.process_time() - cpu_start)
        if self.breakdown:
            times.append(end)
            fwd, bwd, opt, upd = (b - a for a, b in zip(times[:-1], times[1:]))
            out.update(student_forward=fwd - self.probe.seconds,
                       teacher_forward=self.probe.seconds, backward=bwd, optimizer=opt,
                       teacher_update=upd)
        return out

    def count_flops(self, inputs, samples) -> Dict[str, int]:
        """FLOPs of one forward + backward (teacher forward counted apart too)."""
        probe = TeacherProbe(self.model, self.device, sync=False)
        probe.count_flops = True
        probe.install()
        try:
            with flop_counter() as counter:
                loss = self.forward_loss(inputs, samples)
                loss.backward()
        finally:
            probe.remove()
        self.optim_wrapper.zero_grad()
        return dict(total=counter.get_total_flops(), teacher=probe.flops)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.


def check_settings(device: str, amp: str, teacher_views: str, iters: int, warmup: int,
                   batch_size: int) -> torch.device:
    """The device to run on, after checking every setting (errors name the setting)."""
    if amp not in AMP_DTYPES:
        raise ValueError(f'amp must be one of {sorted(AMP_DTYPES)}, got {amp!r}')
    if teacher_views not in TEACHER_VIEWS:
        raise ValueError(f'teacher_views must be one of {TEACHER_VIEWS}, got '
                         f'{teacher_views!r}')
    if iters < 1 or warmup < 0 or batch_size < 1:
        raise ValueError(f'need iters >= 1, warmup >= 0, batch_size >= 1; got iters={iters}'
                         f', warmup={warmup}, batch_size={batch_size}')
    dev = torch.device(device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError("device='cuda' but CUDA is not available")
    if dev.type not in ('cpu', 'cuda'):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return dev


def summarize_steps(records: List[dict], batch_size: int) -> dict:
    """Throughput and step times (medians) of the timed steps' records."""
    step_s = [r['step'] for r in records]
    step_ms = 1e3 * _median(step_s)
    out = dict(
        img_per_s=batch_size / (step_ms / 1e3), step_ms=step_ms,
        step_ms_mean=1e3 * statistics.fmean(step_s), step_ms_min=1e3 * min(step_s),
        step_ms_all=[1e3 * s for s in step_s],
        # CPU time of this process per step (all its threads): on a shared machine it
        # varies less with the other load than the wall time does
        step_cpu_ms=1e3 * _median([r['cpu'] for r in records]),
        breakdown_ms={})
    if 'teacher_update' in records[0]:
        out['breakdown_ms'] = {k: 1e3 * _median([r[k] for r in records])
                               for k in BREAKDOWN_KEYS}
        no_update = _median([r['step'] - r['teacher_update'] for r in records])
        out['img_per_s_without_teacher_update'] = batch_size / no_update
    return out


def run_benchmark(algo: str = 'sdae',
                  arch: str = 's',
                  batch_size: int = 8,
                  img_size: int = 224,
                  iters: int = 20,
                  warmup: int = 5,
                  device: str = 'cpu',
                  amp: str = 'none',
                  teacher_views: str = 'folds',
                  compile: bool = False,
                  compile_mode: Optional[str] = None,
                  breakdown: Optional[bool] = None,
                  threads: Optional[int] = None,
                  config: Optional[str] = None,
                  cfg_options: Optional[dict] = None,
                  flops: bool = True,
                  peak_tflops: Optional[float] = None,
                  seed: int = 0) -> dict:
    """Build the method's model and time ``iters`` steps after ``warmup`` steps.

    Args:
        algo (str): ``'sdae'``, ``'dbot'``, ``'rc_mae'`` or ``'mae'``.
        arch (str): ``'t'`` (DeiT-Tiny), ``'s'`` (DeiT-Small), ``'b'`` or ``'l'``.
        batch_size (int): Images per step.
        img_size (int): Input size (patch 16).
        iters (int): Timed steps.
        warmup (int): Untimed steps before them (compilation, allocator warm-up).
        device (str): ``'cpu'`` or ``'cuda'``.
        amp (str): ``'none'`` (fp32), ``'fp16'`` or ``'bf16'`` autocast.
        teacher_views (str): ``'folds'``: SdAE's teacher on its fold views (the method);
            ``'full'``: on the whole image, then the same patches gathered.
        compile (bool): ``torch.compile`` each transformer block.
        compile_mode (str, optional): ``mode`` of ``torch.compile`` (e.g.
            ``'max-autotune'``); None: its default.
        breakdown (bool, optional): Time the phases with a sync between them; defaults
            to True on CPU (no cost there) and False on GPU.
        threads (int, optional): ``torch.set_num_threads``.
        config (str, optional): Config file instead of the method's ViT-B config.
        cfg_options (dict, optional): Config overrides merged after the arch swap.
        flops (bool): Count FLOPs (one extra forward + backward in eager mode, after
            the timed steps and the memory reading).
        peak_tflops (float, optional): Peak for model FLOP utilisation; known GPUs by
            default.
        seed (int): Random seed of the model and the batch.

    Returns:
        dict: Settings and figures: ``img_per_s``, ``step_ms`` (median), ``peak_mem_mb``,
        ``import_mem_mb`` and ``peak_mem_above_imports_mb`` (CPU: max RSS before the model
        is built, and the peak above it; None on GPU), ``breakdown_ms`` (medians),
        ``flops_per_img``, ...
    """
    dev = check_settings(device, amp, teacher_views, iters, warmup, batch_size)
    if threads is not None:
        torch.set_num_threads(threads)
    breakdown = dev.type == 'cpu' if breakdown is None else bool(breakdown)
    torch.manual_seed(seed)
    # what the process holds before the model exists (interpreter, torch and the
    # OpenMMLab libraries): the CPU peak above it is the model's and the step's
    import_mem = peak_memory_mb(dev) if dev.type == 'cpu' else None
    cfg = load_benchmark_config(algo, arch, img_size, config, cfg_options)
    model = build_model(cfg, dev)
    if teacher_views == 'full':
        use_full_image_teacher(model)
    momentum = teacher_ema_momentum(cfg) if hasattr(model, 'update_teacher') else None
    runner = StepRunner(model, build_optim_wrapper(cfg, model, amp, dev), dev, amp, momentum,
                        breakdown)
    num_patches = (img_size // int(cfg.model.backbone.get('patch_size', 16)))**2
    batch = make_batch(batch_size, img_size, num_patches, mask_ratio_of(cfg), dev,
                       torch.Generator().manual_seed(seed))
    if compile:
        compile_blocks(model, mode=compile_mode)
    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(dev)
    for _ in range(warmup):
        runner.step(*batch)
    records = [runner.step(*batch) for _ in range(iters)]
    peak = peak_memory_mb(dev)
    # FLOPs last, so that this extra pass does not touch the memory figure; in eager
    # mode (the counter sees aten ops, which compiled kernels bypass)
    flop_counts = dict(total=0, teacher=0)
    if flops:
        with torch.compiler.set_stance('force_eager'):
            flop_counts = runner.count_flops(*batch)

    result = dict(
        algo=algo, arch=arch, model=cfg.model.type, config=config or ALGO_CONFIGS.get(algo),
        batch_size=batch_size, img_size=img_size, num_patches=num_patches,
        iters=iters, warmup=warmup, device=dev.type, amp=amp, compile=bool(compile),
        compile_mode=compile_mode if compile else None,
        teacher_views=teacher_views, breakdown=breakdown,
        threads=torch.get_num_threads(), torch=torch.__version__, machine=machine_name(dev),
        **summarize_steps(records, batch_size),
        peak_mem_mb=peak,
        peak_mem_kind='cuda_max_memory_allocated' if dev.type == 'cuda' else 'max_rss',
        import_mem_mb=import_mem,
        peak_mem_above_imports_mb=None if import_mem is None else peak - import_mem,
        teacher_update='ema' if momentum is not None else 'none',
        num_teacher_tokens=getattr(model, 'num_teacher_tokens', None),
        params_trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        params_total=sum(p.numel() for p in model.parameters()),
        flops_per_img=flop_counts['total'] / batch_size,
        teacher_flops_per_img=flop_counts['teacher'] / batch_size)
    achieved = result['flops_per_img'] * result['img_per_s'] / 1e12
    peak_tflops = peak_tflops or gpu_peak_tflops(dev, amp)
    result.update(achieved_tflops=achieved, peak_tflops=peak_tflops,
                  mfu=achieved / peak_tflops if peak_tflops and achieved else None)
    return result


def format_table(result: dict) -> str:
    """A two-column text table of a :func:`run_benchmark` result."""
    rows = [
        ('algo / arch', f"{result['algo']} / ViT-{result['arch'].upper()}/16"),
        ('batch x img', f"{result['batch_size']} x {result['img_size']}"),
        ('device', f"{result['device']} ({result['machine']}), {result['threads']} threads"),
        ('amp / compile', f"{result['amp']} / {result['compile']}"),
        ('teacher views', result['teacher_views']),
        ('iters (warm-up)', f"{result['iters']} ({result['warmup']})"),
        ('img/s', f"{result['img_per_s']:.2f}"),
        ('step ms (median)', f"{result['step_ms']:.1f}"),
        ('process CPU ms / step', f"{result['step_cpu_ms']:.1f}"),
    ]
    for key, value in result.get('breakdown_ms', {}).items():
        rows.append((f'  {key} ms', f'{value:.1f}'))
    if 'img_per_s_without_teacher_update' in result:
        rows.append(('img/s w/o teacher update',
                     f"{result['img_per_s_without_teacher_update']:.2f}"))
    rows.append((f"peak mem MB ({result['peak_mem_kind']})", f"{result['peak_mem_mb']:.0f}"))
    if result.get('import_mem_mb'):
        rows.append(('  of which before the model', f"{result['import_mem_mb']:.0f}"))
    if result['flops_per_img']:
        rows += [
            ('GFLOPs / img (fwd+bwd)', f"{result['flops_per_img'] / 1e9:.2f}"),
            ('teacher GFLOPs / img', f"{result['teacher_flops_per_img'] / 1e9:.2f}"),
            ('achieved TFLOP/s', f"{result['achieved_tflops']:.3f}"),
        ]
    if result.get('mfu') is not None:
        rows.append(('MFU', f"{100 * result['mfu']:.1f}% of {result['peak_tflops']} TFLOP/s"))
    width = max(len(k) for k, _ in rows)
    return '\n'.join(f'{k:<{width}}  {v}' for k, v in rows)


EPILOG = """\
A step: model.loss on a synthetic batch (normalised random images; ids_shuffle =
argsort(rand) with the mask generator's visible count), parse_losses, backward, the
config's optimizer (AdamW, param-wise settings; one step per iteration), and the
teacher update of the method (SdAE, RC-MAE: EMA with the hook's momentum, run every
step here even where the recipe runs it per epoch; dBOT, MAE: none per step).
Breakdown (CPU always, GPU with --breakdown, which adds a sync between phases):
student_forward (encoder, decoder, loss head), teacher_forward, backward, optimizer,
teacher_update; medians over the timed steps.
Peak memory: max RSS of this process on CPU (run one setting per process to compare),
torch.cuda.max_memory_allocated on GPU. FLOPs: torch.utils.flop_counter over one eager
forward + backward, per image (multiply-add = 2 FLOPs).
--teacher-views full (SdAE): the teacher encodes the whole image (all patches + cls as
one sequence) and the patches the loss needs are gathered from it, instead of encoding
those patches in fold views.
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Time one pretraining step', epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--algo', choices=sorted(ALGO_CONFIGS), default='sdae')
    parser.add_argument('--arch', choices=sorted(ARCHS), default='s',
                        help='t: DeiT-Tiny 192-d, s: DeiT-Small 384-d, b: ViT-B, l: ViT-L')
    parser.add_argument('--config', default=None,
                        help="config file instead of the method's ViT-B config")
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--iters', type=int, default=20, help='timed steps')
    parser.add_argument('--warmup', type=int, default=5, help='untimed steps before them')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--amp', choices=sorted(AMP_DTYPES), default='none',
                        help='autocast dtype (fp16 uses a dynamic loss scaler)')
    parser.add_argument('--teacher-views', choices=TEACHER_VIEWS, default='folds')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile every transformer block')
    parser.add_argument('--compile-mode', default=None,
                        help="torch.compile mode, e.g. 'max-autotune' (default: torch's)")
    parser.add_argument('--breakdown', action='store_true',
                        help='time each phase on GPU (adds syncs); always on for CPU')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--no-flops', action='store_true', help='skip FLOP counting')
    parser.add_argument('--peak-tflops', type=float, default=None,
                        help='peak for model FLOP utilisation (known GPUs by default)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, help='write the results to this file')
    parser.add_argument('--verbose', action='store_true',
                        help="keep mmengine's INFO logs (model init, param-wise options)")
    parser.add_argument('--cfg-options', nargs='+', default=None, metavar='KEY=VALUE',
                        help='config overrides after the arch swap, e.g. '
                        'model.neck.num_layers=2')
    return parser.parse_args(argv)


def write_json(result: dict, path: str) -> None:
    """Write ``result`` to ``path`` (its folder created)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)


@contextmanager
def quiet_logs(enabled: bool = True):
    """Raise the current mmengine logger to WARNING for the duration."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    if enabled:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def main(argv=None) -> dict:
    args = parse_args(argv)
    with quiet_logs(not args.verbose):
        result = run_benchmark(
            algo=args.algo, arch=args.arch, batch_size=args.batch_size,
            img_size=args.img_size, iters=args.iters, warmup=args.warmup, device=args.device,
            amp=args.amp, teacher_views=args.teacher_views, compile=args.compile,
            compile_mode=args.compile_mode,
            breakdown=True if args.breakdown else None, threads=args.threads,
            config=args.config, cfg_options=parse_cfg_options(args.cfg_options),
            flops=not args.no_flops, peak_tflops=args.peak_tflops, seed=args.seed)
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == '__main__':
    main()
