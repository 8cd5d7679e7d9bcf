"""Which layout and method a checkpoint has, and its encoders ("branches").

Layouts (``FORMATS``), detected from the keys and metadata:

- ``sdae-mm``: an mmengine checkpoint of this suite (``state_dict`` with the student
  encoder under ``backbone.``, the teacher under ``teacher.``, decoders under ``neck.`` /
  ``teacher_neck.``); mmpretrain names. Its method comes from ``meta`` (the config's model
  type) or the keys.
- ``mmpretrain``: mmpretrain checkpoints without a teacher: MAE-family pretraining
  (``backbone.`` + ``neck.``), a fine-tuned ``ImageClassifier`` (``backbone.`` +
  ``head.fc.``), or a bare backbone (such as a ``tools/convert_checkpoint.py`` output).
- ``official-sdae``: ``{'model': MAE student with decoder, 'model_teacher': ViT}``
  (AbrahamYabo/SdAE ``util/misc.py``); timm names.
- ``official-rc-mae``: ``{'student', 'teacher', 'student_without_ddp',
  'teacher_without_ddp', ...}`` (youngwanLEE/rc-mae ``save_model_distill``; the student
  of a DDP run carries ``module.``); a file with ``model`` and ``teacher`` is read the same.
- ``official-dbot`` / ``official-mae``: ``{'model': ...}`` (liuxingbin/dbot,
  facebookresearch/mae); dBOT is told apart by its decoder predictor ``decoder_predp`` or
  its ``args``; both fine-tune this encoder, so the two need not be told apart. Their
  fine-tuned checkpoints (``fc_norm``, ``head``) have the same layout.
- ``timm``: a timm ``VisionTransformer`` state dict.

Every key of a branch is either an encoder parameter, a pretraining-only part that the
layout has by design (decoder, mask token, pretraining heads), or an error naming it.
"""
import math
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

from .names import naming_of, rename

__all__ = ['FORMATS', 'ALGORITHMS', 'DEFAULT_BRANCH', 'BRANCHES', 'Layout', 'detect_layout',
           'extract_encoder', 'inspect_encoder', 'detect_algorithm']

FORMATS = ('sdae-mm', 'mmpretrain', 'official-sdae', 'official-dbot', 'official-rc-mae',
           'official-mae', 'timm')
ALGORITHMS = ('sdae', 'dbot', 'rc_mae', 'mae')
BRANCHES = ('student', 'teacher')

# The branch each method's own fine-tuning loads (docs/checkpoints.md):
# SdAE main_finetune.py: checkpoint[--model_mode], default 'model' (student);
# dBOT main_finetune.py: checkpoint['model'] (student; the teacher is another file);
# RC-MAE run_finetune.py: checkpoint[--checkpoint_key], default 'teacher';
# MAE: only the encoder.
DEFAULT_BRANCH = {'sdae': 'student', 'dbot': 'student', 'rc_mae': 'teacher', 'mae': 'student'}

#: parts of a pretraining model that are not the encoder (dropped by design)
_OFFICIAL_DROPPED = ('decoder_', 'mask_token')
_MMENGINE_DROPPED = ('neck.', 'teacher_neck.', 'target_generator.', 'data_preprocessor.')
#: top-level entries of official checkpoints that are not weights
_OFFICIAL_OTHER = {'optimizer', 'epoch', 'scaler', 'args', 'model_ema', 'lr_scheduler',
                   'teacher_without_ddp', 'student', 'student_without_ddp'}
#: dBOT's ``args`` fields that MAE's lack
_DBOT_ARGS = ('init_teacher_encoder_depth', 'teacher_encoder_depth', 'teacher_resume')


class Layout(dict):
    """A detected layout (a dict).

    Keys: ``format``, ``algo`` (one of :data:`ALGORITHMS`, or None when it does not
    matter or cannot be known), ``source`` (how both were found), ``branches``
    (branch name -> raw state dict, prefix removed), ``naming`` ('timm' or
    'mmpretrain') and ``meta`` (the checkpoint's metadata, possibly empty).
    """


def _strip(sd: Dict[str, torch.Tensor], prefix: str) -> 'OrderedDict[str, torch.Tensor]':
    return OrderedDict((k[len(prefix):], v) for k, v in sd.items() if k.startswith(prefix))


def _strip_module(sd: dict) -> dict:
    if sd and all(k.startswith('module.') for k in sd):
        return _strip(sd, 'module.')
    return sd


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _algo_from_name(name: str) -> Optional[str]:
    norm = re.sub(r'[^a-z0-9]', '', str(name).lower().rsplit('.', 1)[-1])
    for tag, algo in (('sdae', 'sdae'), ('dbot', 'dbot'), ('rcmae', 'rc_mae')):
        if tag in norm:
            return algo
    return 'mae' if norm == 'mae' else None


def _model_type_from_cfg(cfg_text: str) -> Optional[str]:
    """``type`` of the top-level ``model = dict(...)`` of a config's text."""
    start = re.search(r'^model\s*=\s*dict\(', cfg_text, flags=re.M)
    if start is None:
        return None
    top, depth, quote = [], 1, None
    for ch in cfg_text[start.end():]:
        if quote:
            if ch == quote:
                quote = None
        elif ch in '\'"':
            quote = ch
        elif ch in '([{':
            depth += 1
            continue
        elif ch in ')]}':
            depth -= 1
            if depth == 0:
                break
            continue
        if depth == 1:
            top.append(ch)
    found = re.search(r'(?:^|[,\s(])type\s*=\s*[\'"]([\w.]+)[\'"]', ''.join(top))
    return found.group(1) if found else None


def detect_algorithm(state_dict: Dict[str, torch.Tensor],
                     meta: Optional[dict] = None) -> Tuple[Optional[str], str]:
    """The method of an sdae-mm / mmpretrain checkpoint, and where it was read.

    ``meta['algorithm']`` / ``meta['algo']``, then the model type of the config text
    mmengine keeps in ``meta['cfg']``, then the keys: ``teacher_neck.`` is RC-MAE,
    ``teacher.`` alone SdAE or dBOT (None: both fine-tune the student), no teacher MAE.
    """
    meta = meta or {}
    for field in ('algorithm', 'algo'):
        value = meta.get(field)
        if isinstance(value, str) and _algo_from_name(value):
            return _algo_from_name(value), f'meta[{field!r}]={value!r}'
    cfg = meta.get('cfg')
    if isinstance(cfg, str):
        model_type = _model_type_from_cfg(cfg)
        if model_type and _algo_from_name(model_type):
            return _algo_from_name(model_type), f"meta['cfg'] model type {model_type!r}"
    if any(k.startswith('teacher_neck.') for k in state_dict):
        return 'rc_mae', "keys ('teacher_neck.' present)"
    if any(k.startswith('teacher.') for k in state_dict):
        return None, "keys ('teacher.' without 'teacher_neck.': SdAE or dBOT)"
    return 'mae', "keys (no 'teacher.')"


def _mmengine_layout(sd: dict, meta: dict, path: str) -> Layout:
    heads = sorted({k.split('.', 1)[0] for k in sd})
    if any(k.startswith(('backbone.', 'teacher.')) for k in sd):
        branches = OrderedDict(student=_strip(sd, 'backbone.'))
        if any(k.startswith('teacher.') for k in sd):
            branches['teacher'] = _strip(sd, 'teacher.')
        has_neck = any(k.startswith('neck.') for k in sd)
        cls_head = OrderedDict()
        if not has_neck:  # a classifier: keep its linear head
            for src in ('head.fc.', 'head.layers.head.'):
                cls_head.update((k[len(src):], v) for k, v in sd.items()
                                if k.startswith(src))
        allowed = ('backbone.', 'teacher.') + _MMENGINE_DROPPED + ('head.', )
        stray = sorted(k for k in sd if not k.startswith(allowed))
        if stray:
            raise KeyError(f'checkpoint {path!r}: keys {stray[:8]} belong to no part of a '
                           f'ViT pretraining model or classifier (parts: {heads})')
        if cls_head:
            branches['student'].update(('head.' + k, v) for k, v in cls_head.items())
        ours = 'teacher' in branches or meta.get('algorithm') or \
            'sdae_mm' in str(meta.get('cfg', ''))
        fmt = 'sdae-mm' if ours else 'mmpretrain'
        algo, source = detect_algorithm(sd, meta)
        if cls_head:
            algo, source = None, "keys ('backbone.' + classifier 'head.')"
        return Layout(format=fmt, algo=algo, source=source, branches=branches,
                      naming='mmpretrain', meta=meta)
    naming = naming_of(sd)
    if not naming:
        raise KeyError(f'checkpoint {path!r}: no ViT encoder found (top-level key parts: '
                       f'{heads[:10]})')
    fmt = 'timm' if naming == 'timm' else 'mmpretrain'
    algo = meta.get('algorithm') if meta.get('algorithm') in ALGORITHMS else None
    return Layout(format=fmt, algo=algo, source=f'keys ({naming} ViT names, no prefix)',
                  branches=OrderedDict(student=OrderedDict(sd)), naming=naming, meta=meta)


def _official_layout(ckpt: dict, path: str) -> Layout:
    args = ckpt.get('args')
    meta = {'args': vars(args)} if hasattr(args, '__dict__') else {}

    def weights(key):
        value = ckpt[key]
        if not _is_state_dict(value):
            raise KeyError(f'checkpoint {path!r}: {key!r} is not a state dict of tensors')
        return _strip_module(OrderedDict(value))

    if 'model_teacher' in ckpt:
        branches = OrderedDict(student=weights('model'), teacher=weights('model_teacher'))
        return Layout(format='official-sdae', algo='sdae',
                      source="keys ('model' and 'model_teacher')", branches=branches,
                      naming='timm', meta=meta)
    if 'teacher' in ckpt:
        student_key = next((k for k in ('student_without_ddp', 'student', 'model')
                            if k in ckpt), None)
        branches = OrderedDict(teacher=weights('teacher'))
        if student_key:
            branches['student'] = weights(student_key)
        return Layout(format='official-rc-mae', algo='rc_mae',
                      source=f"keys ('teacher'{', ' + repr(student_key) if student_key else ''})",
                      branches=branches, naming='timm', meta=meta)
    model = weights('model')
    args_dict = meta.get('args', {})
    if 'decoder_predp.weight' in model:
        algo, source = 'dbot', "keys ('model' with dBOT's 'decoder_predp')"
    elif any(a in args_dict for a in _DBOT_ARGS):
        algo, source = 'dbot', "keys ('model') and dBOT's args"
    elif 'head.weight' in model:
        algo, source = None, "keys ('model' with a classification head: fine-tuned)"
    elif 'decoder_pred.weight' in model:
        algo, source = 'mae', "keys ('model' with MAE's 'decoder_pred')"
    else:
        algo, source = None, "keys ('model': the MAE / dBOT encoder layout)"
    fmt = 'official-dbot' if algo == 'dbot' else 'official-mae'
    return Layout(format=fmt, algo=algo, source=source,
                  branches=OrderedDict(student=model), naming='timm', meta=meta)


def detect_layout(ckpt, fmt: str = 'auto', path: str = '<checkpoint>') -> Layout:
    """Detect the layout of a loaded checkpoint and split it into branches.

    Args:
        ckpt: What :func:`~sdae_mm.checkpoint.read_checkpoint` returned.
        fmt (str): 'auto', or one of :data:`FORMATS` to insist on a layout.
        path (str): The file, for messages.

    Returns:
        Layout: The layout.
    """
    if fmt != 'auto' and fmt not in FORMATS:
        raise ValueError(f"format must be 'auto' or one of {FORMATS}, got {fmt!r}")
    if not isinstance(ckpt, dict):
        raise KeyError(f'checkpoint {path!r} holds a {type(ckpt).__name__}, not a dict of '
                       'weights')
    if isinstance(ckpt.get('state_dict'), dict):
        meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
        layout = _mmengine_layout(ckpt['state_dict'], meta, path)
    elif any(k in ckpt for k in ('model', 'model_teacher', 'teacher')) and not \
            _is_state_dict(ckpt):
        layout = _official_layout(ckpt, path)
    elif _is_state_dict(ckpt):
        layout = _mmengine_layout(_strip_module(ckpt), {}, path)
    else:
        raise KeyError(f'checkpoint {path!r} has none of the layouts this suite reads '
                       f'(top-level keys: {sorted(map(str, ckpt))[:10]}): expected '
                       "'state_dict' (mmengine), 'model' (official MAE/dBOT/SdAE/RC-MAE), "
                       "'teacher' (RC-MAE) or a bare state dict")
    if fmt != 'auto' and fmt != layout['format']:
        compatible = {('official-mae', 'official-dbot'), ('official-dbot', 'official-mae'),
                      ('mmpretrain', 'sdae-mm'), ('sdae-mm', 'mmpretrain')}
        if (layout['format'], fmt) not in compatible:
            raise KeyError(f'checkpoint {path!r} has the {layout["format"]} layout '
                           f'({layout["source"]}), not {fmt}')
        layout['format'] = fmt
        layout['source'] += f'; format {fmt} given'
        if fmt == 'official-dbot':
            layout['algo'] = 'dbot'
    return layout


def _validate_and_split(raw: Dict[str, torch.Tensor], naming: str,
                        where: str) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Canonical (mmpretrain-named) encoder of one branch, and the keys dropped by design."""
    dropped = sorted(k for k in raw if naming == 'timm' and k.startswith(_OFFICIAL_DROPPED))
    kept = OrderedDict((k, v) for k, v in raw.items() if k not in set(dropped))
    encoder, unknown = rename(kept, naming, 'mmpretrain')
    if unknown:
        raise KeyError(f'{where}: {len(unknown)} key(s) are not parameters of a ViT encoder '
                       f'({naming} names) nor a pretraining decoder: {unknown[:8]}')
    return encoder, dropped


def inspect_encoder(encoder: Dict[str, torch.Tensor], where: str = 'encoder') -> dict:
    """Read a ViT's sizes from its mmpretrain-named weights and check every key and shape.

    Args:
        encoder (dict): The encoder (``head.*`` allowed).
        where (str): What to call it in messages.

    Returns:
        dict: ``embed_dims``, ``num_layers``, ``patch_size``, ``in_channels``,
        ``mlp_hidden``, ``grid``, ``final_norm`` (has ``ln1``), ``fc_norm`` (has
        ``ln2``), ``num_classes`` (0 without head).
    """
    def need(key):
        if key not in encoder:
            raise KeyError(f'{where}: missing key {key!r}')
        return encoder[key]

    proj = need('patch_embed.projection.weight')
    pos_embed = need('pos_embed')
    if proj.ndim != 4 or proj.shape[2] != proj.shape[3]:
        raise ValueError(f'{where}: patch_embed.projection.weight has shape '
                         f'{tuple(proj.shape)}, expected (C, in_channels, p, p)')
    if pos_embed.ndim != 3:
        raise ValueError(f'{where}: pos_embed has shape {tuple(pos_embed.shape)}, expected '
                         '(1, 1 + L, C)')
    num_patches = pos_embed.shape[1] - 1
    side = math.isqrt(max(num_patches, 0))
    if side == 0 or side * side != num_patches:
        raise ValueError(f'{where}: pos_embed has {pos_embed.shape[1]} positions; expected '
                         '1 (cls) + a square number of patch positions')
    indices = {int(m.group(1)) for m in (re.match(r'^layers\.(\d+)\.', k) for k in encoder)
               if m}
    if not indices:
        raise KeyError(f"{where}: no block ('layers.<i>.*')")
    c = int(proj.shape[0])
    spec = dict(embed_dims=c, num_layers=max(indices) + 1, patch_size=int(proj.shape[-1]),
                in_channels=int(proj.shape[1]),
                mlp_hidden=int(need('layers.0.ffn.layers.0.0.weight').shape[0]),
                grid=(side, side), final_norm='ln1.weight' in encoder,
                fc_norm='ln2.weight' in encoder,
                num_classes=int(encoder['head.weight'].shape[0]) if 'head.weight' in encoder
                else 0)
    h = spec['mlp_hidden']
    expected = OrderedDict([('cls_token', (1, 1, c)), ('pos_embed', (1, num_patches + 1, c)),
                            ('patch_embed.projection.weight', tuple(proj.shape)),
                            ('patch_embed.projection.bias', (c, ))])
    block = (('ln1.weight', (c, )), ('ln1.bias', (c, )), ('attn.qkv.weight', (3 * c, c)),
             ('attn.qkv.bias', (3 * c, )), ('attn.proj.weight', (c, c)),
             ('attn.proj.bias', (c, )), ('ln2.weight', (c, )), ('ln2.bias', (c, )),
             ('ffn.layers.0.0.weight', (h, c)), ('ffn.layers.0.0.bias', (h, )),
             ('ffn.layers.1.weight', (c, h)), ('ffn.layers.1.bias', (c, )))
    for i in range(spec['num_layers']):
        expected.update((f'layers.{i}.{k}', s) for k, s in block)
    for norm, present in (('ln1', spec['final_norm']), ('ln2', spec['fc_norm'])):
        if present:
            expected.update([(f'{norm}.weight', (c, )), (f'{norm}.bias', (c, ))])
    if spec['num_classes']:
        expected.update([('head.weight', (spec['num_classes'], c)),
                         ('head.bias', (spec['num_classes'], ))])
    for key, shape in expected.items():
        if tuple(need(key).shape) != shape:
            raise ValueError(f'{where}: {key!r} has shape {tuple(encoder[key].shape)}, '
                             f'expected {shape} (embed_dims={c}, mlp_hidden={h}, '
                             f'patch_size={spec["patch_size"]})')
    extra = [k for k in encoder if k not in expected]
    if extra:
        raise KeyError(f'{where}: {len(extra)} unexpected key(s), not parameters of a ViT '
                       f'encoder: {extra[:8]}')
    return spec


def extract_encoder(layout: Layout, branch: Optional[str] = None, algo: Optional[str] = None,
                    path: str = '<checkpoint>') -> Tuple['OrderedDict', dict, dict]:
    """One branch's encoder in mmpretrain names, checked key by key.

    Args:
        layout (Layout): From :func:`detect_layout`.
        branch (str, optional): 'student' or 'teacher'; default: the branch the method's
            own fine-tuning loads (:data:`DEFAULT_BRANCH`), the student when the method is
            unknown or has no teacher.
        algo (str, optional): Overrides the detected method (sets the default branch).
        path (str): The file, for messages.

    Returns:
        tuple: The encoder (``head.*`` included when fine-tuned), its spec
        (:func:`inspect_encoder`) and the provenance (format, algorithm, branch, sources,
        dropped keys).
    """
    if algo is not None and algo not in ALGORITHMS:
        raise ValueError(f'algo must be one of {ALGORITHMS}, got {algo!r}')
    if branch is not None and branch not in BRANCHES:
        raise ValueError(f'branch must be one of {BRANCHES}, got {branch!r}')
    algo_source = layout['source']
    if algo is not None:
        algo_source = 'given'
    algo = algo or layout['algo']
    branch_source = 'given'
    if branch is None:
        branch = DEFAULT_BRANCH.get(algo, 'student')
        branch_source = f'default for {algo}' if algo else 'the only or the student encoder'
        if branch not in layout['branches']:
            branch, branch_source = 'student', f'the file has no {branch}: its only encoder'
    if branch not in layout['branches']:
        hint = (" (dBOT writes its teacher to a separate file, checkpoint-teacher-<epoch>.pth:"
                ' convert that file)' if layout['format'] in ('official-dbot', 'official-mae')
                else '')
        raise KeyError(f'checkpoint {path!r} ({layout["format"]}) has no {branch} encoder; '
                       f'it has: {sorted(layout["branches"])}{hint}')
    where = f'{path} [{layout["format"]}, {branch}]'
    raw = layout['branches'][branch]
    if not raw:
        raise KeyError(f'{where}: the {branch} encoder is empty')
    encoder, dropped = _validate_and_split(raw, layout['naming'], where)
    spec = inspect_encoder(encoder, where)
    info = dict(format=layout['format'], format_source=layout['source'], algorithm=algo,
                algorithm_source=algo_source, branch=branch, branch_source=branch_source,
                dropped=dropped)
    return encoder, spec, info
