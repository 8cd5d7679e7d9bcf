"""Official pretraining recipes, computed from the official code's rules, and the tables of
docs/fidelity.md ("Effective recipes: pretraining").

For each paper config, :data:`SPECS` holds what the official run used (its command line
and argparse defaults, with file:line sources in the official repositories). The official
side of every value is computed here by re-typed official rules (``eff_batch_size``,
``DistributedSampler`` + ``drop_last``, ``lr_sched.adjust_learning_rate``,
``cosine_scheduler`` and how the loops index it, timm's ``add_weight_decay``,
``torch.linspace`` drop path); the effective side is read from
:func:`sdae_mm.engine.recipe.effective_recipe`, the code path of
``tools/analysis_tools/print_recipe.py``. ``tests/test_engine/test_recipe_fidelity.py``
asserts they agree and that docs/fidelity.md shows exactly these tables.

Regenerate the docs section after a change::

    .venv/bin/python -m tests.helpers.fidelity --write
"""
import math
import os.path as osp
from functools import lru_cache
from typing import Dict, List, Optional

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOC = osp.join(ROOT, 'docs', 'fidelity.md')
SECTION = '## Effective recipes: pretraining'
IMAGENET = 1_281_167
POINTS = (0., 0.25, 0.5, 0.75, 1.)

_SDAE = 'AbrahamYabo/SdAE'
_DBOT = 'liuxingbin/dbot'
_RCMAE = 'youngwanLEE/rc-mae'
_MAE = 'facebookresearch/mae'
_WD_RULE = ('timm 0.3.2 `optim_factory.add_weight_decay`: no decay for 1-D tensors and '
            '`*.bias`, applied to the trainable student')


def _sdae(name, config, arch_note=None, **kw):
    spec = dict(
        name=name, config=config, repo=_SDAE, gpus=8, per_gpu=96, accum=1, epochs=300,
        warmup=60, blr=2.666e-4, lr_rule='mae', wd=0.04, betas=(0.9, 0.95),
        ema=dict(unit='epoch', base=0.96, final=0.99), stages=None,
        drop_path=dict(encoder=0.25, decoder=0., teacher=0.), clip=None,
        sources=dict(
            launch='README.md:17-18 (`--nproc_per_node 8 --batch_size 96`)',
            epochs='README.md:18 (`--epochs 300`)',
            steps='main_pretrain.py:180,198 (DistributedSampler, `drop_last=True`)',
            lr='main_pretrain.py:249-253 (blr x eff_batch_size / 256), README.md:20 '
               '(`--blr 2.666e-4`)',
            optimizer='main_pretrain.py:269',
            wd='main_pretrain.py:68 (default 0.04), 268; ' + _WD_RULE,
            warmup='README.md:19 (`--warmup_epochs 60`), util/lr_sched.py:11-12',
            lr_at='engine_pretrain.py:91 (per iteration), util/lr_sched.py:9-21',
            ema='engine_pretrain.py:159-162 (after the epoch, `ema_op per_epoch`)',
            momentum='README.md:21, main_pretrain.py:205-210 (niter_per_ep=1), '
                     'util/cosine_scheduler.py:13-24, engine_pretrain.py:61 '
                     '(`momentum_schedule[epoch]`)',
            drop_path_encoder='README.md:22 (`--drop_path 0.25`), models_mae.py:39-42',
            drop_path_decoder='models_mae.py:56 (decoder Blocks without drop path)',
            drop_path_teacher='main_pretrain.py:216-218 (`drop_path_rate=0.0`)',
            amp='engine_pretrain.py:95 (autocast), main_pretrain.py:271 (NativeScaler)',
            clip='engine_pretrain.py:133-134 (no `clip_grad`)'))
    spec.update(kw)
    if arch_note:
        spec['note'] = arch_note
    return spec


def _mae_family(name, config, repo, **kw):
    """dBOT / RC-MAE / MAE share MAE's pretraining loop."""
    spec = dict(name=name, config=config, repo=repo, warmup=40, blr=1.5e-4, lr_rule='mae',
                wd=0.05, betas=(0.9, 0.95), ema=None, stages=None, clip=None,
                drop_path=dict(encoder=0., decoder=0., teacher=0.))
    spec.update(kw)
    return spec


def _dbot(name, config, arch, depth, teacher_depths, sdpr, clip, cmd_lines):
    return _mae_family(
        name, config, _DBOT, gpus=32, per_gpu=128, accum=1, epochs=1600, lr_rule='dbot',
        stages=dict(stage_epochs=[0, 800, 1600], teacher_depths=teacher_depths),
        drop_path=dict(encoder=sdpr, decoder=sdpr, teacher=0.), clip=clip,
        sources=dict(
            launch=f'PRETRAIN.md:3 (4 nodes x 8 GPUs), {cmd_lines[0]} (`--batch_size 128`)',
            epochs=f'PRETRAIN.md:{cmd_lines[1]} (`--epochs 1600`)',
            steps='main_pretrain.py:155,173 (DistributedSampler, `drop_last=True`)',
            lr='main_pretrain.py:202-205, PRETRAIN.md:5-6 (blr 1.5e-4, effective batch 4096)',
            optimizer='main_pretrain.py:228',
            wd='run.sh:34 (`--weight_decay 0.05`), main_pretrain.py:226-227; ' + _WD_RULE,
            warmup='run.sh:33 (`--warmup_epochs 40`), util/lr_sched.py:15-36 (per stage)',
            lr_at='engine_pretrain.py:44-46 (per iteration), util/lr_sched.py:11-42',
            stages=f'PRETRAIN.md:{cmd_lines[2]} (`--stage_epochs 0 800 1600 --depth '
                   f'{depth} ... --init_teacher_encoder_depth {teacher_depths[0]}`), '
                   'main_pretrain.py:179-180, 274-289',
            drop_path_encoder=f'PRETRAIN.md:{cmd_lines[3]} (`--sdpr {sdpr}`), models_mae.py:50-54',
            drop_path_decoder='models_mae.py:65-69 (linspace(0, drop_path_rate, decoder_depth))',
            drop_path_teacher='main_pretrain.py:61-62 (`--tdpr` default 0), 188-191',
            amp='engine_pretrain.py:50 (autocast), main_pretrain.py:231 (NativeScaler)',
            clip=('PRETRAIN.md:23 (`--clip_grad 3.0`), engine_pretrain.py:61'
                  if clip else f'PRETRAIN.md:{cmd_lines[4]} (no `--clip_grad`), '
                  'main_pretrain.py:65-66 (default None)')))


def _rcmae(name, config, arch_script, per_gpu, accum, lines, **kw):
    s = f'scripts/{arch_script}'
    ln = dict(zip(('launch', 'accum', 'epochs', 'warmup', 'blr', 'wd'), lines))
    return _mae_family(
        name, config, _RCMAE, gpus=8, per_gpu=per_gpu, accum=accum, epochs=1600,
        ema=dict(unit='epoch_step', base=0.996, final=1.0),
        sources=dict(
            launch=f"{s}:{ln['launch']},{ln['accum']} (`--nproc_per_node=8 --batch_size "
                   f"{per_gpu} --accum_iter {accum}`)",
            epochs=f"{s}:{ln['epochs']} (`--epochs 1600`)",
            steps='run_pretrain.py:219,238 (DistributedSampler, `drop_last=True`); '
                  'engine_pretrain.py:101-108 (step every `accum_iter` micro-batches, '
                  'counted within the epoch)',
            lr='run_pretrain.py:258-261 (eff_batch_size = batch_size x accum_iter x '
               f"world_size), {s}:{ln['blr']} (`--blr 1.5e-4`)",
            optimizer='run_pretrain.py:286',
            wd=f"{s}:{ln['wd']} (`--weight_decay 0.05`), run_pretrain.py:283-285; " + _WD_RULE,
            warmup=f"{s}:{ln['warmup']} (`--warmup_epochs 40`), util/lr_sched.py:27-28",
            lr_at='engine_pretrain.py:66-69 (set at the first micro-batch of each '
                  'accumulation cycle), util/lr_sched.py:25-43',
            ema='engine_pretrain.py:110-116 (after every micro-batch)',
            momentum='run_pretrain.py:172 (0.996), 292-294 (cosine_scheduler(0.996, 1, '
                     'epochs, len(data_loader_train))), engine_pretrain.py:112 '
                     '(`momentum_schedule[data_iter_step]`, the step within the epoch)',
            drop_path_encoder='models_rc.py:63-75 (Blocks without drop path)',
            drop_path_decoder='models_rc.py:92-104 (Blocks without drop path)',
            drop_path_teacher='run_pretrain.py:248-250 (the same model)',
            amp='engine_pretrain.py:73 (autocast), run_pretrain.py:288 (NativeScaler)',
            clip='engine_pretrain.py:101-106 (no `clip_grad`)'),
        **kw)


SPECS: List[Dict] = [
    _sdae('SdAE ViT-S/16, 300 epochs',
          'configs/sdae/sdae_vit-small-p16_8xb96-amp-coslr-300e_in1k.py',
          arch_note='No official ViT-S recipe exists; the official column is the ViT-B '
                    'command of the README, which this config keeps (see *Deviations*).'),
    _sdae('SdAE ViT-B/16, 300 epochs',
          'configs/sdae/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py'),
    _sdae('SdAE ViT-L/16, 300 epochs',
          'configs/sdae/sdae_vit-large-p16_8xb96-amp-coslr-300e_in1k.py',
          arch_note='No official ViT-L recipe exists; the official column is the ViT-B '
                    'command of the README, which this config keeps (see *Deviations*).'),
    _sdae('SdAE ViT-B/16, 100 epochs',
          'configs/sdae/sdae_vit-base-p16_8xb96-amp-coslr-100e_in1k.py',
          epochs=100, warmup=20, ema=dict(unit='epoch', base=0.9, final=0.95),
          drop_path=dict(encoder=0.15, decoder=0., teacher=0.),
          arch_note='The 100-epoch values are the authors\' reply in AbrahamYabo/SdAE '
                    'issue #3 (`--epochs 100 --warmup_epochs 20 --momentum_teacher 0.9 '
                    '--momentum_teacher_final 0.95 --drop_path 0.15`, the rest as the '
                    'README command); the sources of the rules are the code\'s.'),
    _dbot('dBOT ViT-B/16, 1600 epochs',
          'configs/dbot/dbot_vit-base-p16_32xb128-amp-coslr-1600e_in1k.py', 'b', 12, (12, 12),
          0.2, 3.0, (13, 14, '17-19', 20, 23)),
    _dbot('dBOT ViT-L/16, 1600 epochs',
          'configs/dbot/dbot_vit-large-p16_32xb128-amp-coslr-1600e_in1k.py', 'l', 24, (0, 24),
          0.2, None, (31, 32, '35-37', 38, '30-42')),
    _dbot('dBOT ViT-H/14, 1600 epochs',
          'configs/dbot/dbot_vit-huge-p14_32xb128-amp-coslr-1600e_in1k.py', 'h', 32, (0, 32),
          0.3, None, (47, 48, '51-53', 54, '46-58')),
    _rcmae('RC-MAE ViT-S/16, 1600 epochs',
           'configs/rc_mae/rc_mae_vit-small-p16_8xb512-amp-coslr-1600e_in1k.py',
           'pretrain_rc_mae_vit_small_1600ep.sh', 512, 1, ('24,26', 27, 28, 29, 32, 33)),
    _rcmae('RC-MAE ViT-B/16, 1600 epochs',
           'configs/rc_mae/rc_mae_vit-base-p16_8xb256-accum2-amp-coslr-1600e_in1k.py',
           'pretrain_rc_mae_vit_base_1600ep.sh', 256, 2, ('21,23', 24, 25, 26, 30, 31)),
    _rcmae('RC-MAE ViT-L/16, 1600 epochs',
           'configs/rc_mae/rc_mae_vit-large-p16_8xb256-accum2-amp-coslr-1600e_in1k.py',
           'pretrain_rc_mae_vit_large_1600ep.sh', 256, 2, ('21,23', 24, 25, 26, 30, 31)),
    _mae_family(
        'MAE ViT-B/16, 1600 epochs', 'configs/mae/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py',
        _MAE, gpus=8, per_gpu=512, accum=1, epochs=1600,
        note='The official runs used 8 nodes x 8 GPUs x 64 images (PRETRAIN.md:3-18); the '
             'effective batch, 4096, and every rule are the same on 8 GPUs x 512, the '
             'launch this config declares, so the official column is computed for 8 x 512.',
        sources=dict(
            launch='PRETRAIN.md:18 (effective batch 4096 = batch_size x nodes x 8 x '
                   'accum_iter)',
            epochs='the MAE paper\'s 1600-epoch schedule (its Fig. 7); PRETRAIN.md:13 shows 800',
            steps='main_pretrain.py:134,152 (DistributedSampler, `drop_last=True`)',
            lr='main_pretrain.py:163-166, PRETRAIN.md:15,19 (`--blr 1.5e-4`)',
            optimizer='main_pretrain.py:180',
            wd='PRETRAIN.md:15 (`--weight_decay 0.05`), main_pretrain.py:179; ' + _WD_RULE,
            warmup='PRETRAIN.md:14 (`--warmup_epochs 40`), util/lr_sched.py:11-12',
            lr_at='engine_pretrain.py:43 (per iteration), util/lr_sched.py:9-21',
            drop_path_encoder='models_mae.py:40 (Blocks without drop path)',
            drop_path_decoder='models_mae.py:54 (Blocks without drop path)',
            amp='engine_pretrain.py:47 (autocast), main_pretrain.py:182 (NativeScaler)',
            clip='engine_pretrain.py:57 (no `clip_grad`)')),
]
SPEC_BY_CONFIG = {s['config']: s for s in SPECS}


# --------------------------------------------------------------------------------------
# Official rules, re-typed from the official code (no sdae_mm code is used here).
def official_iters_per_epoch(spec) -> int:
    """``len(data_loader_train)``: DistributedSampler (``ceil(N / world)`` samples per
    rank) batched with ``drop_last=True``."""
    return math.ceil(IMAGENET / spec['gpus']) // spec['per_gpu']


def official_lr(spec, epoch: float) -> float:
    """The official ``adjust_learning_rate`` at a fractional epoch (``min_lr`` 0): linear
    warm-up from 0, then a half cosine to 0 at the end of the run or, for dBOT, of the
    stage containing ``epoch`` (the schedule restarts at each stage boundary)."""
    lr = spec['blr'] * spec['gpus'] * spec['per_gpu'] * spec['accum'] / 256
    start, stop = 0., spec['epochs']
    if spec['lr_rule'] == 'dbot':
        bounds = spec['stages']['stage_epochs']
        start = max(b for b in bounds if b <= epoch)
        stop = min(b for b in bounds if b > epoch)
    t, warmup, length = epoch - start, spec['warmup'], stop - start
    if t < warmup:
        return lr * t / warmup
    return lr * (1. + math.cos(math.pi * (t - warmup) / (length - warmup))) / 2.


def official_lr_at_iteration(spec, k: int) -> float:
    """The lr in the optimizer at micro-batch ``k`` of the run: set at the first
    micro-batch of each accumulation cycle from ``data_iter_step / len + epoch``."""
    ipe = official_iters_per_epoch(spec)
    epoch, step = divmod(k, ipe)
    step -= step % spec['accum']
    return official_lr(spec, epoch + step / ipe)


def cosine_scheduler(base: float, final: float, epochs: int,
                     steps_per_epoch: int) -> np.ndarray:
    """The momentum table of the official code (SdAE ``util/cosine_scheduler.py``, RC-MAE
    ``util/lr_sched.py``) without warm-up: ``n = epochs x steps_per_epoch`` values, value
    ``k`` being ``final + (base - final) * (1 + cos(pi * k / n)) / 2``."""
    n = epochs * steps_per_epoch
    return final + (base - final) * (1. + np.cos(np.pi * np.arange(n) / n)) / 2.


def official_momentum_at_iteration(spec, k: int) -> Optional[float]:
    """Momentum of the EMA update of micro-batch ``k`` (RC-MAE: indexed by the step within
    the epoch) or of the epoch containing it (SdAE: after the epoch, by epoch)."""
    ema = spec['ema']
    if ema is None:
        return None
    ipe = official_iters_per_epoch(spec)
    if ema['unit'] == 'epoch':
        return float(cosine_scheduler(ema['base'], ema['final'], spec['epochs'], 1)[k // ipe])
    return float(cosine_scheduler(ema['base'], ema['final'], spec['epochs'], ipe)[k % ipe])


def official_drop_path(rate: float, depth: int) -> List[float]:
    """``[x.item() for x in torch.linspace(0, rate, depth)]`` (timm-style MAE models)."""
    return [x.item() for x in torch.linspace(0, rate, depth)]


def official_weight_decay_counts(model: torch.nn.Module) -> Dict[float, int]:
    """timm 0.3.2 ``add_weight_decay`` over the trainable parameters: tensors per wd."""
    decay = no_decay = 0
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if len(param.shape) == 1 or name.endswith('.bias'):
            no_decay += 1
        else:
            decay += 1
    return {'decay': decay, 'no_decay': no_decay}


def official_values(spec, recipe: Dict, model: torch.nn.Module) -> Dict:
    """Every official value of ``spec``, at the iterations the recipe reports."""
    ipe = official_iters_per_epoch(spec)
    total = spec['gpus'] * spec['per_gpu'] * spec['accum']
    iters = [p['iter'] for p in recipe['lr_at']]
    blocks = _block_counts(recipe)
    out = dict(
        launch=(spec['gpus'], spec['per_gpu'], spec['accum'], total),
        epochs=spec['epochs'],
        iters_per_epoch=ipe,
        steps_per_epoch=ipe // spec['accum'],
        optimizer_steps=spec['epochs'] * (ipe // spec['accum']),
        base_lr=spec['blr'] * total / 256,
        optimizer=('AdamW', tuple(spec['betas'])),
        wd=spec['wd'],
        wd_counts=official_weight_decay_counts(model),
        warmup_epochs=spec['warmup'],
        warmup_start=0.,
        lr_at=[official_lr_at_iteration(spec, k) for k in iters],
        ema=None, momentum_at=None, stages=None,
        drop_path={part: official_drop_path(spec['drop_path'][part], blocks[part])
                   if spec['drop_path'][part] else [0.] * blocks[part] for part in blocks},
        amp=('float16', 'dynamic'),
        clip=spec['clip'])
    if spec['ema']:
        ema = spec['ema']
        out['ema'] = ('epoch', spec['epochs']) if ema['unit'] == 'epoch' else (
            'iter', spec['epochs'] * ipe)
        out['momentum_at'] = [official_momentum_at_iteration(spec, k) for k in iters]
    if spec['stages']:
        st = spec['stages']
        out['stages'] = ([e for e in st['stage_epochs'][1:-1]], tuple(st['teacher_depths']))
    return out


# --------------------------------------------------------------------------------------
# Effective values, read from the recipe of print_recipe.py.
_PARTS = dict(encoder='backbone.layers', decoder='neck.decoder_blocks', teacher='teacher.layers')


def _block_counts(recipe) -> Dict[str, int]:
    dp = recipe['drop_path']
    out = {}
    for part, key in _PARTS.items():
        if key in dp:
            out[part] = len(dp[key])
    if 'encoder' not in out:  # mmpretrain MAE: backbone.layers / neck.decoder_blocks
        raise KeyError(f'no encoder blocks in {list(dp)}')
    return out


def effective_values(recipe: Dict) -> Dict:
    L, s = recipe['launch'], recipe['schedule']
    wd_rows = recipe['weight_decay']
    decayed = [r for r in wd_rows if r['weight_decay'] > 0]
    out = dict(
        launch=(L['gpus'], L['per_gpu_batch'], L['accumulative_counts'], L['total_batch']),
        epochs=s['max_epochs'],
        iters_per_epoch=s['iters_per_epoch'],
        steps_per_epoch=s['optimizer_steps_per_epoch'],
        optimizer_steps=s['optimizer_steps'],
        base_lr=recipe['lr']['base_lr'],
        optimizer=(recipe['optimizer']['type'], tuple(recipe['optimizer']['betas'] or ())),
        wd=(decayed[0]['weight_decay'] if len(decayed) == 1
            else [r['weight_decay'] for r in decayed]),
        wd_counts=dict(decay=sum(r['tensors'] for r in decayed),
                       no_decay=sum(r['tensors'] for r in wd_rows if r['weight_decay'] == 0)),
        warmup_epochs=recipe['warmup']['epochs'] if recipe['warmup'] else 0,
        warmup_start=(recipe['warmup'] or {}).get('start_factor', 0.),
        lr_at=[p['lr'] for p in recipe['lr_at']],
        ema=None, momentum_at=None, stages=None,
        drop_path={part: recipe['drop_path'][key] for part, key in _PARTS.items()
                   if key in recipe['drop_path']},
        amp=(recipe['amp']['dtype'], recipe['amp']['loss_scale']),
        clip=(recipe['clip_grad'] or {}).get('max_norm'))
    tm = recipe['teacher_momentum']
    if tm:
        out['ema'] = (tm['update_interval'], tm['updates'])
        out['momentum_at'] = list(tm['at'])
    st = recipe['stages']
    if st:
        out['stages'] = (list(st['switch_after_epochs']),
                         tuple(x['teacher_depth'] for x in st['stages']))
    return out


# --------------------------------------------------------------------------------------
# Rendering the tables.
def _g(v, digits=4) -> str:
    if v == 0:
        return '0'
    return f'{v:.{digits}g}'


def _dp(rates: List[float]) -> str:
    if not any(rates):
        return f'none ({len(rates)} blocks)'
    return f'{_g(rates[0])} → {_g(rates[-1])} linear over {len(rates)} blocks'


def _cells(v: Dict, spec: Dict) -> Dict[str, str]:
    g, p, a, t = v['launch']
    cells = dict(
        launch=f'{g} x {p} x {a} = {t}',
        epochs=str(v['epochs']),
        steps=f"{v['iters_per_epoch']} / {_g(v['steps_per_epoch'], 6)}; "
              f"{v['optimizer_steps']:,} steps",
        lr=_g(v['base_lr']),
        optimizer=f"{v['optimizer'][0]}, betas {v['optimizer'][1]}",
        wd=f"{_g(v['wd'])} on {v['wd_counts']['decay']} tensors, 0 on "
           f"{v['wd_counts']['no_decay']}",
        warmup=f"{_g(v['warmup_epochs'])} epochs"
               + (' per stage' if spec['lr_rule'] == 'dbot' else '')
               + (f", from lr x {v['warmup_start']:g}" if v['warmup_start'] else ', from 0'),
        lr_at=', '.join(_g(x) for x in v['lr_at']),
        drop_path_encoder=_dp(v['drop_path']['encoder']),
        drop_path_decoder=_dp(v['drop_path']['decoder']),
        amp=f"{v['amp'][0]}, {v['amp'][1]} loss scale",
        clip='none' if v['clip'] is None else f"max norm {_g(v['clip'])}")
    if 'teacher' in v['drop_path']:
        cells['drop_path_teacher'] = _dp(v['drop_path']['teacher'])
    if v['ema']:
        unit, n = v['ema']
        cells['ema'] = f"after every {'epoch' if unit == 'epoch' else 'micro-batch'} " \
                       f"({n:,} updates)"
        cells['momentum'] = ', '.join(f'{m:.6f}' for m in v['momentum_at'])
    if v['stages']:
        switches, depths = v['stages']
        cells['stages'] = (f"switch after epoch {', '.join(map(str, switches))}; teacher "
                           f"depth {' then '.join(map(str, depths))}")
    return cells


_ROWS = [
    ('launch', 'GPUs x images per GPU x accumulation = batch'),
    ('epochs', 'epochs'),
    ('steps', 'iterations / optimizer steps per epoch; in all'),
    ('lr', 'lr (blr x batch / 256)'),
    ('optimizer', 'optimizer'),
    ('wd', 'weight decay (tensors)'),
    ('warmup', 'linear warm-up'),
    ('lr_at', 'lr at 0 / 25 / 50 / 75 / 100 % of the iterations'),
    ('ema', 'teacher EMA'),
    ('momentum', 'momentum at 0 / 25 / 50 / 75 / 100 %'),
    ('stages', 'bootstrapping stages'),
    ('drop_path_encoder', 'drop path, student encoder'),
    ('drop_path_decoder', 'drop path, student decoder'),
    ('drop_path_teacher', 'drop path, teacher'),
    ('amp', 'mixed precision'),
    ('clip', 'gradient clipping'),
]


def render_table(spec: Dict, recipe: Dict, official: Dict) -> str:
    eff = _cells(effective_values(recipe), spec)
    off = _cells(official, spec)
    lines = [f"### {spec['name']}", '',
             f"`{spec['config']}`, on the {spec['gpus']} GPUs it declares; official: "
             f"[{spec['repo']}](https://github.com/{spec['repo']}).", '']
    if spec.get('note'):
        lines += [spec['note'], '']
    lines += ['| value | sdae-mm (effective) | official | source |', '|---|---|---|---|']
    for key, label in _ROWS:
        if key not in eff and key not in off:
            continue
        lines.append(f"| {label} | {eff.get(key, '-')} | {off.get(key, '-')} | "
                     f"{spec['sources'].get(key, '')} |")
    return '\n'.join(lines)


@lru_cache(maxsize=None)
def recipe_of(config: str) -> Dict:
    """The print_recipe recipe of a config on its declared GPUs (cached)."""
    from mmengine.config import Config

    from sdae_mm.engine.recipe import effective_recipe
    return effective_recipe(Config.fromfile(osp.join(ROOT, config)))


@lru_cache(maxsize=None)
def student_of(config: str) -> torch.nn.Module:
    """The config's model on the meta device (for the official weight-decay rule)."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    from sdae_mm.engine.runner import _device_context
    cfg = Config.fromfile(osp.join(ROOT, config))
    with DefaultScope.overwrite_default_scope('mmpretrain'), _device_context('meta'):
        return MODELS.build(cfg.model)


def render_section() -> str:
    intro = [
        SECTION, '',
        'What each paper config *effectively* trains with on the GPU count it declares, '
        'read back from the built Runner, optimizer, schedulers, hooks and model by '
        '`tools/analysis_tools/print_recipe.py` (`sdae_mm/engine/recipe.py`), next to the '
        'official run\'s value computed from the official code\'s rules, with its source '
        '(paths are in the official repository named under each title). '
        '`tests/test_engine/test_recipe_fidelity.py` asserts every row and that these '
        'tables are the ones the code produces (`.venv/bin/python -m tests.helpers.fidelity '
        '--write` rewrites them). Iterations are data-loader steps (micro-batches); '
        'ImageNet-1k train has 1,281,167 images. Where the two columns differ, the '
        'difference is deliberate and listed under *Deviations of the effective recipes* '
        'below.']
    parts = ['\n'.join(intro)]
    for spec in SPECS:
        recipe = recipe_of(spec['config'])
        official = official_values(spec, recipe, student_of(spec['config']))
        parts.append(render_table(spec, recipe, official))
    return '\n\n'.join(parts) + '\n'


def doc_section(text: str) -> str:
    """The generated part of the section in docs/fidelity.md: from its heading to the
    ``### Deviations of the effective recipes`` heading."""
    start = text.index(SECTION)
    end = text.index('### Deviations of the effective recipes', start)
    return text[start:end].rstrip() + '\n'


def write_doc() -> None:
    with open(DOC) as f:
        text = f.read()
    old = doc_section(text)
    with open(DOC, 'w') as f:
        f.write(text.replace(old, render_section(), 1))


if __name__ == '__main__':
    import sys
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    import sdae_mm  # noqa: F401
    if '--write' in sys.argv[1:]:
        write_doc()
    else:
        print(render_section())
