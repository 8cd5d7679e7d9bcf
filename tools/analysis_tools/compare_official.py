"""Time sdae-mm's SdAE step against the official SdAE code's step on the same machine.

The official code (github.com/AbrahamYabo/SdAE) is not part of this project: clone it
anywhere and pass its directory. Its model files are imported from there unchanged;
what it needs to import and build on the current stack (written for torch 1.7, numpy
< 1.20 and timm 0.3.2) is supplied while it loads and removed afterwards: the ``np.float``
alias, a ``torch._six`` module with ``inf``, and a ``qk_scale`` argument that timm 1.x's
``Block`` no longer takes (always None there, i.e. timm's default scale). None of it
changes what the official code computes.

Paired mode (default): both steps are built in this process and run alternately, each
pair in a random order (the official step, ours with the teacher EMA every step, ours
without it), so that both see the same machine state; the speed-up is the median of
the per-pair ratios. ``--only official`` times the official step alone in a process
that loads nothing of sdae-mm or OpenMMLab, for its peak memory (compare with
``tools/analysis_tools/benchmark_step.py`` run alone).

The official step, as its ``engine_pretrain.py`` runs one iteration: the student
(MAE encoder on the visible patches, 512-d decoder on all), the teacher on the first
``shrink_num`` masked patches in ``ncrop_loss`` fold views under ``no_grad``, the
teacher's features standardised over channels, the student's predictions at those
patches gathered and folded alike, ``1 - cosine_similarity(...).mean()`` over
``cosine_similarity``'s default dimension, the loss read with ``.item()`` (its
finite-loss check), its ``NativeScalerWithGradNormCount`` (backward, unscale, grad
norm, AdamW step over timm's weight-decay groups) and ``zero_grad``; the teacher EMA
runs once per epoch in its recipe, so not per step; the per-iteration learning-rate
update (a loop over the groups) is left out. Under ``torch.cuda.amp.autocast`` as in
its code: fp16 on a GPU, inactive on a CPU.

Examples:
    # CPU, ViT-S/16, batch 8, fp32, 2 threads: docs/speed.md
    python tools/analysis_tools/compare_official.py --official-src ~/SdAE --arch s --batch-size 8 \\
        --threads 2 --pairs 25 --warmup 3 --json work_dirs/bench/paired_cpu.json
    # the official step alone, for its peak memory
    python tools/analysis_tools/compare_official.py --official-src ~/SdAE --only official \\
        --threads 2
    # GPU, ViT-B/16, batch 96: ours in bf16 against its fp16
    python tools/analysis_tools/compare_official.py --official-src ~/SdAE --arch b \\
        --batch-size 96 --device cuda --amp bf16 --pairs 30 --warmup 5
"""
import argparse
import importlib
import math
import os
import os.path as osp
import random
import statistics
import sys
import time
import types
from contextlib import contextmanager, nullcontext

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
# torch only: nothing of sdae-mm or OpenMMLab is loaded before ``build_ours``
from tools.analysis_tools import benchmark_step as bm  # noqa: E402

OFFICIAL_ARCHS = {'s': 'small', 'b': 'base', 'l': 'large'}
OFFICIAL_MODULES = ('models_mae', 'models_teacher', 'util.misc')
# The official pretraining recipe (its README): 75 % masking, 147 teacher tokens in
# 3 folds, drop path 0.25, AdamW (0.9, 0.95) with weight decay 0.05.
RECIPE = dict(mask_ratio=0.75, shrink_num=147, ncrop_loss=3, drop_path=0.25,
              weight_decay=0.05, lr=1.5e-4)


@contextmanager
def legacy_shims(src: str):
    """Let the official code import and build on the current stack, then undo it."""
    import numpy as np
    added_float = 'float' not in np.__dict__
    if added_float:
        np.float = float  # its pos_embed.py builds the sin-cos table with np.float
    added_six = 'torch._six' not in sys.modules
    if added_six:
        six = types.ModuleType('torch._six')
        six.inf = math.inf  # its util/misc.py: `from torch._six import inf`
        sys.modules['torch._six'] = six
    sys.path.insert(0, src)
    try:
        yield
    finally:
        sys.path.remove(src)
        if added_six:
            sys.modules.pop('torch._six', None)
        if added_float:
            del np.float


def block_without_qk_scale(block_cls):
    """timm 1.x's ``Block`` behind the official call, which passes ``qk_scale=None``."""

    def build(*args, qk_scale=None, **kwargs):
        if qk_scale is not None:
            raise ValueError(f'qk_scale={qk_scale!r}: timm 1.x Block has no such argument')
        return block_cls(*args, **kwargs)

    return build


def import_official(src: str) -> dict:
    """The official modules, imported from ``src`` (a checkout of AbrahamYabo/SdAE)."""
    src = osp.abspath(osp.expanduser(src))
    missing = [m for m in OFFICIAL_MODULES
               if not osp.isfile(osp.join(src, *m.split('.')) + '.py')]
    if missing:
        raise FileNotFoundError(f'--official-src {src!r} is not a checkout of the official '
                                f'SdAE code: no {", ".join(missing)}')
    modules = {}
    with legacy_shims(src):
        for name in OFFICIAL_MODULES:
            module = importlib.import_module(name)
            path = osp.abspath(getattr(module, '__file__', '') or '')
            if not path.startswith(src + os.sep):
                raise ImportError(f'{name!r} resolved to {path!r}, not under --official-src '
                                  f'{src!r}: another module of that name is loaded')
            modules[name] = module
    if hasattr(modules['models_mae'], 'Block'):
        modules['models_mae'].Block = block_without_qk_scale(modules['models_mae'].Block)
    modules['src'] = src
    return modules


class OfficialStep:
    """One pretraining iteration of the official code (see the module docstring).

    Args:
        src (str): Directory of the official code.
        arch (str): ``'s'``, ``'b'`` or ``'l'`` (its ``mae_vit_{small,base,large}_patch16``
            student with the 512-d 8-block decoder, and ``vit_*_patch16`` teacher).
        batch_size (int): Images per step (224 px).
        device (torch.device): Where it runs.
        settings (dict): ``mask_ratio``, ``shrink_num``, ``ncrop_loss``, ``drop_path``,
            ``weight_decay`` and ``lr``.
        seed (int): Seed of the weights and the batch.
        modules (dict, optional): What :func:`import_official` returned for ``src``.
    """

    def __init__(self, src, arch, batch_size, device, settings=None, seed=0, modules=None):
        if arch not in OFFICIAL_ARCHS:
            raise ValueError(f'arch must be one of {sorted(OFFICIAL_ARCHS)} (the official '
                             f'code has no other SdAE model), got {arch!r}')
        self.cfg = dict(RECIPE, **(settings or {}))
        self.device = device
        mods = modules or import_official(src)
        name = OFFICIAL_ARCHS[arch]
        torch.manual_seed(seed)
        with legacy_shims(mods['src']):  # np.float is used while building
            self.student = getattr(mods['models_mae'], f'mae_vit_{name}_patch16')(
                norm_pix_loss=False, drop_path=self.cfg['drop_path'])
            self.teacher = getattr(mods['models_teacher'], f'vit_{name}_patch16')(
                drop_path_rate=0.0, shrink_num=self.cfg['shrink_num'])
            self.scaler = mods['util.misc'].NativeScalerWithGradNormCount()
        self.student.to(device).train()
        self.teacher.to(device).train()
        from timm.optim import param_groups_weight_decay
        groups = param_groups_weight_decay(self.student, self.cfg['weight_decay'])
        self.optimizer = torch.optim.AdamW(groups, lr=self.cfg['lr'], betas=(0.9, 0.95))
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.randn(batch_size, 3, 224, 224, generator=generator).to(device)

    def autocast(self):
        if self.device.type == 'cuda':
            return torch.autocast('cuda', dtype=torch.float16)
        return nullcontext()

    def __call__(self) -> float:
        shrink, folds = self.cfg['shrink_num'], self.cfg['ncrop_loss']
        with self.autocast():
            pred, _, ids_masked = self.student(self.images, mask_ratio=self.cfg['mask_ratio'])
            with torch.no_grad():
                target = self.teacher(self.images, ids_unkeep=ids_masked,
                                      shrink_num=shrink, ncrop_loss=folds)
            target = (target - target.mean(-1, keepdim=True)) / \
                (target.var(-1, keepdim=True) + 1e-6)**.5
            ids = ids_masked[:, :shrink - shrink % folds]
            pred = torch.gather(pred, 1, ids[..., None].expand(-1, -1, pred.shape[-1]))
            pred = pred.reshape(pred.shape[0] * folds, -1, pred.shape[-1])
            loss = 1 - torch.nn.functional.cosine_similarity(target, pred).mean()
            value = loss.item()
        self.scaler(loss, self.optimizer, parameters=self.student.parameters(),
                    update_grad=True)
        self.optimizer.zero_grad()
        return value


def timed(fn, device) -> float:
    bm.sync(device)
    start = time.perf_counter()
    fn()
    bm.sync(device)
    return time.perf_counter() - start


def build_ours(arch, batch_size, device, amp, settings, cfg_options, seed):
    """sdae-mm's SdAE step (``benchmark_step.py``'s) with the official settings, then
    ``cfg_options`` (``KEY=VALUE`` strings)."""
    options = {'model.num_teacher_tokens': settings['shrink_num'],
               'model.num_folds': settings['ncrop_loss'],
               'model.backbone.drop_path_rate': settings['drop_path']}
    options.update(bm.parse_cfg_options(cfg_options) or {})
    import logging

    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # no per-parameter init log
    torch.manual_seed(seed)
    cfg = bm.load_benchmark_config('sdae', arch, 224, cfg_options=options)
    mask_ratio = bm.mask_ratio_of(cfg)
    if not math.isclose(mask_ratio, settings['mask_ratio']):
        raise ValueError(f'mask_ratio: sdae-mm config has {mask_ratio}, the official step '
                         f"{settings['mask_ratio']}")
    model = bm.build_model(cfg, device)
    wrapper = bm.build_optim_wrapper(cfg, model, amp, device)
    momentum = bm.teacher_ema_momentum(cfg)  # SdAE's TeacherEMAHook
    inputs, samples = bm.make_batch(batch_size, 224, 196, mask_ratio, device,
                                    torch.Generator().manual_seed(seed))
    with_ema = bm.StepRunner(model, wrapper, device, amp, momentum, breakdown=False)
    without = bm.StepRunner(model, wrapper, device, amp, None, breakdown=False)
    return (lambda: with_ema.step(inputs, samples)), (lambda: without.step(inputs, samples))


def quartiles(values):
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else ordered * 3
    return dict(q25=q[0], median=statistics.median(ordered), q75=q[-1])


def run(args) -> dict:
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError("--device cuda but CUDA is not available")
    if args.pairs < 1 or args.warmup < 0:
        raise ValueError(f'need --pairs >= 1 and --warmup >= 0, got {args.pairs}, '
                         f'{args.warmup}')
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = dict(RECIPE)
    modules = import_official(args.official_src)
    # torch, timm and the official modules (--only official)
    import_mem = bm.peak_memory_mb(torch.device('cpu'))
    steps = {'official': OfficialStep(args.official_src, args.arch, args.batch_size, device,
                                      settings, args.seed, modules)}
    if args.only != 'official':
        steps['ours_ema'], steps['ours'] = build_ours(
            args.arch, args.batch_size, device, args.amp, settings, args.cfg_options,
            args.seed)
    names = list(steps)
    for _ in range(args.warmup):
        for name in names:
            timed(steps[name], device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    rng = random.Random(args.seed)
    rows = []
    for i in range(args.pairs):
        order = rng.sample(names, len(names))
        rows.append({name: 1e3 * timed(steps[name], device) for name in order})
        print(f'round {i + 1}/{args.pairs}: ' + ', '.join(
            f'{name} {rows[-1][name]:.1f} ms' for name in names), flush=True)
    result = dict(
        official_src=osp.abspath(args.official_src), arch=args.arch,
        batch_size=args.batch_size, img_size=224, device=device.type,
        amp_ours=args.amp if args.only != 'official' else None,
        amp_official='fp16' if device.type == 'cuda' else 'none',
        threads=torch.get_num_threads(), pairs=args.pairs, warmup=args.warmup,
        settings=settings, cfg_options=args.cfg_options, torch=torch.__version__,
        machine=bm.machine_name(device),
        step_ms={name: statistics.median(r[name] for r in rows) for name in names},
        step_ms_all=rows)
    result['img_per_s'] = {name: args.batch_size / (ms / 1e3)
                           for name, ms in result['step_ms'].items()}
    if len(names) > 1:
        result['speedup'] = {}
        for name in names[1:]:
            ratios = [r['official'] / r[name] for r in rows]
            result['speedup'][name] = dict(quartiles(ratios),
                                           faster_in=sum(x > 1 for x in ratios))
    # one step's memory only when it ran alone (the paired process holds both models)
    if len(names) == 1:
        result['peak_mem_mb'] = bm.peak_memory_mb(device)
    if len(names) == 1 and device.type == 'cpu':
        result['import_mem_mb'] = import_mem
    return result


LABELS = {'official': 'official SdAE step', 'ours_ema': 'sdae-mm (teacher EMA every step)',
          'ours': 'sdae-mm (no EMA, as the per-epoch recipe)'}


def format_table(result: dict) -> str:
    lines = [f"{result['device']} ({result['machine']}), {result['threads']} threads, "
             f"ViT-{result['arch'].upper()}/16, batch {result['batch_size']} x 224, "
             f"{result['pairs']} rounds after {result['warmup']} warm-up",
             f"{'step':<44}{'ms (median)':>12}{'img/s':>9}{'speed-up':>22}"]
    for name, ms in result['step_ms'].items():
        speedup = result.get('speedup', {}).get(name)
        extra = '' if speedup is None else (
            f"{speedup['median']:.3f}x [{speedup['q25']:.3f}, {speedup['q75']:.3f}]")
        lines.append(f'{LABELS[name]:<44}{ms:>12.1f}{result["img_per_s"][name]:>9.2f}'
                     f'{extra:>22}')
    if 'speedup' in result:
        wins = ', '.join(f"{LABELS[n]}: {s['faster_in']}/{result['pairs']}"
                         for n, s in result['speedup'].items())
        lines.append(f'speed-up: median [quartiles] of the per-round ratios official/ours; '
                     f'ours faster in {wins}')
    if 'peak_mem_mb' in result:
        mem = f"peak memory MB: {result['peak_mem_mb']:.0f}"
        if result.get('import_mem_mb'):
            mem += f" (before the models: {result['import_mem_mb']:.0f})"
        lines.append(mem)
    else:
        lines.append('peak memory: not per step here (one process holds both); run '
                     '--only official and tools/analysis_tools/benchmark_step.py alone')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Time sdae-mm's SdAE step against the official SdAE code's step",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--official-src', required=True,
                        help='a checkout of github.com/AbrahamYabo/SdAE')
    parser.add_argument('--arch', choices=sorted(OFFICIAL_ARCHS), default='s')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--pairs', type=int, default=20,
                        help='timed rounds (one step of each, in random order)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed rounds first')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--amp', choices=('none', 'fp16', 'bf16'), default='none',
                        help="sdae-mm's autocast (the official step: fp16 on GPU, as coded)")
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--only', choices=('official', ), default=None,
                        help='time the official step alone (its peak memory)')
    parser.add_argument('--cfg-options', nargs='+', default=None, metavar='KEY=VALUE',
                        help="overrides of sdae-mm's config (for experiments: the "
                        'comparison is like-for-like only without them)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, help='write the results to this file')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    result = run(args)
    print(format_table(result))
    if args.json:
        bm.write_json(result, args.json)
    return result


if __name__ == '__main__':
    main()
