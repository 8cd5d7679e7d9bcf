"""Turn a pretraining checkpoint into backbone weights for a downstream library.

A pretraining checkpoint of this suite (mmengine format) keeps the student encoder under
``backbone.``, the teacher encoder under ``teacher.`` (SdAE, dBOT, RC-MAE) and the decoders
under ``neck.``/``teacher_neck.``; encoder names are mmpretrain ``VisionTransformer`` names.
An mmpretrain MAE checkpoint has the same layout without a teacher. The functions here
pick one encoder, check it key by key, optionally resize its position embedding, and
rename it for the target:

- ``mmpretrain`` and ``mmdet``: mmpretrain ``VisionTransformer`` names (unchanged);
- ``mmseg``: mmseg 1.2.2 ``MAE`` backbone names;
- ``timm``: timm ``VisionTransformer`` names (``vit_{small,base,large}_patch16_224``).

``tools/convert_checkpoint.py`` is the command-line front-end.
"""
import math
import pickle
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

TARGETS = ('mmpretrain', 'mmseg', 'mmdet', 'timm')
ALGORITHMS = ('sdae', 'dbot', 'rc_mae', 'mae')
BRANCH_PREFIXES = {'student': 'backbone.', 'teacher': 'teacher.'}

# The branch each paper fine-tunes (see docs/fidelity.md, "Checkpoint conversion"):
# - SdAE: main_finetune.py loads checkpoint[args.model_mode], --model_mode defaults to
#   'model', the student (the teacher is 'model_teacher');
# - dBOT: main_finetune.py loads checkpoint['model'] of checkpoint-<epoch>.pth, the
#   student; the teacher is written to a separate checkpoint-teacher-<epoch>.pth;
# - RC-MAE: run_finetune.py loads checkpoint[args.checkpoint_key], default 'teacher';
# - MAE: there is only the encoder (the student).
DEFAULT_BRANCH = {'sdae': 'student', 'dbot': 'student', 'rc_mae': 'teacher',
                  'mae': 'student', 'sdae_or_dbot': 'student'}

# (embed_dims, num_layers, patch_size) -> timm model name
TIMM_MODELS = {
    (384, 12, 16): 'vit_small_patch16_224',
    (768, 12, 16): 'vit_base_patch16_224',
    (1024, 24, 16): 'vit_large_patch16_224',
}

# Per-block names: mmpretrain suffix -> timm suffix.
_BLOCK_TO_TIMM = OrderedDict([
    ('ln1.weight', 'norm1.weight'),
    ('ln1.bias', 'norm1.bias'),
    ('attn.qkv.weight', 'attn.qkv.weight'),
    ('attn.qkv.bias', 'attn.qkv.bias'),
    ('attn.proj.weight', 'attn.proj.weight'),
    ('attn.proj.bias', 'attn.proj.bias'),
    ('ln2.weight', 'norm2.weight'),
    ('ln2.bias', 'norm2.bias'),
    ('ffn.layers.0.0.weight', 'mlp.fc1.weight'),
    ('ffn.layers.0.0.bias', 'mlp.fc1.bias'),
    ('ffn.layers.1.weight', 'mlp.fc2.weight'),
    ('ffn.layers.1.bias', 'mlp.fc2.bias'),
])
_TOP_TO_TIMM = {
    'cls_token': 'cls_token',
    'pos_embed': 'pos_embed',
    'patch_embed.projection.weight': 'patch_embed.proj.weight',
    'patch_embed.projection.bias': 'patch_embed.proj.bias',
    'ln1.weight': 'norm.weight',
    'ln1.bias': 'norm.bias',
}
_LAYER_RE = re.compile(r'^layers\.(\d+)\.(.+)$')


class ViTSpec(dict):
    """Shape facts of a ViT encoder read from its weights (a plain dict).

    Keys: ``embed_dims``, ``num_layers``, ``patch_size``, ``in_channels``,
    ``mlp_hidden``, ``grid`` (tuple of patch rows and columns).
    """


# ------------------------------------------------------------------------- loading
def load_checkpoint_dict(path: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Read a checkpoint file into ``(state_dict, meta)`` on the CPU.

    Accepts an mmengine checkpoint (``{'state_dict': ..., 'meta': ...}``) or a bare
    state dict. Read with torch's safe loader (``weights_only=True``); the objects
    of mmengine training checkpoints are allow-listed by :mod:`sdae_mm.compat`.

    Args:
        path (str): The checkpoint file.

    Returns:
        tuple[dict, dict]: The state dict and the meta dict (empty if absent).
    """
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f'checkpoint {path!r} holds objects the safe loader refuses '
                         f'({str(err).splitlines()[0]})') from err
    if not isinstance(ckpt, dict):
        raise ValueError(f'checkpoint {path!r} is a {type(ckpt).__name__}, '
                         'expected a dict')
    if 'state_dict' in ckpt:
        state_dict, meta = ckpt['state_dict'], ckpt.get('meta') or {}
    elif ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state_dict, meta = ckpt, {}
    else:
        raise KeyError(f"checkpoint {path!r} has no 'state_dict' and is not a bare "
                       f'state dict (top-level keys: {sorted(ckpt)[:10]})')
    return state_dict, meta


# ------------------------------------------------------------------- algorithm, branch
def _model_type_from_cfg(cfg_text: str) -> Optional[str]:
    """``type`` of the top-level ``model = dict(...)`` in a config's text.

    Only the text at nesting depth 1 of that ``dict(`` call is searched, so the
    ``type`` of a nested backbone or neck is not taken; quoted strings are skipped
    while counting brackets.
    """
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


def _algo_from_name(name: str) -> Optional[str]:
    norm = re.sub(r'[^a-z0-9]', '', name.lower().rsplit('.', 1)[-1])
    if 'sdae' in norm:
        return 'sdae'
    if 'dbot' in norm:
        return 'dbot'
    if 'rcmae' in norm:
        return 'rc_mae'
    if norm == 'mae':
        return 'mae'
    return None


def detect_algorithm(state_dict: Dict[str, torch.Tensor],
                     meta: Optional[dict] = None) -> Tuple[str, str]:
    """Which pretraining method wrote a checkpoint.

    Reads ``meta['algorithm']``/``meta['algo']`` if present, then the model type of
    the config text mmengine stores in ``meta['cfg']``, then falls back to the keys:
    ``teacher_neck.`` means RC-MAE, ``teacher.`` alone SdAE or dBOT (``'sdae_or_dbot'``,
    both fine-tune the student), no teacher MAE.

    Args:
        state_dict (dict): The checkpoint's state dict.
        meta (dict, optional): The checkpoint's meta.

    Returns:
        tuple[str, str]: The algorithm (one of :data:`ALGORITHMS` or
        ``'sdae_or_dbot'``) and where it was read from.
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
        return 'sdae_or_dbot', "keys ('teacher.' present, no 'teacher_neck.')"
    return 'mae', "keys (no 'teacher.')"


def default_branch(algo: str) -> str:
    """The encoder the paper of ``algo`` fine-tunes ('student' or 'teacher')."""
    if algo not in DEFAULT_BRANCH:
        raise ValueError(f'unknown algorithm {algo!r}; expected one of '
                         f'{sorted(DEFAULT_BRANCH)}')
    return DEFAULT_BRANCH[algo]


def extract_encoder(state_dict: Dict[str, torch.Tensor],
                    branch: str) -> Dict[str, torch.Tensor]:
    """The ``branch`` encoder's weights, prefix removed.

    Args:
        state_dict (dict): The pretraining state dict.
        branch (str): 'student' (``backbone.``) or 'teacher' (``teacher.``).

    Returns:
        dict: The encoder's state dict, in mmpretrain ``VisionTransformer`` names.
    """
    if branch not in BRANCH_PREFIXES:
        raise ValueError(f'branch must be one of {sorted(BRANCH_PREFIXES)}, '
                         f'got {branch!r}')
    prefix = BRANCH_PREFIXES[branch]
    encoder = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                          if k.startswith(prefix))
    if not encoder:
        prefixes = sorted({k.split('.', 1)[0] + '.' for k in state_dict})
        raise KeyError(f'branch {branch!r}: the checkpoint has no key starting with '
                       f"{prefix!r} (prefixes present: {prefixes})")
    return encoder


# ------------------------------------------------------------------ checking shapes
def expected_encoder_shapes(spec: dict) -> 'OrderedDict[str, tuple]':
    """Every key and shape of an encoder with the facts in ``spec``."""
    c, h, p = spec['embed_dims'], spec['mlp_hidden'], spec['patch_size']
    length = spec['grid'][0] * spec['grid'][1] + 1
    shapes = OrderedDict([
        ('cls_token', (1, 1, c)),
        ('pos_embed', (1, length, c)),
        ('patch_embed.projection.weight', (c, spec['in_channels'], p, p)),
        ('patch_embed.projection.bias', (c, )),
    ])
    block = {
        'ln1.weight': (c, ), 'ln1.bias': (c, ),
        'attn.qkv.weight': (3 * c, c), 'attn.qkv.bias': (3 * c, ),
        'attn.proj.weight': (c, c), 'attn.proj.bias': (c, ),
        'ln2.weight': (c, ), 'ln2.bias': (c, ),
        'ffn.layers.0.0.weight': (h, c), 'ffn.layers.0.0.bias': (h, ),
        'ffn.layers.1.weight': (c, h), 'ffn.layers.1.bias': (c, ),
    }
    for i in range(spec['num_layers']):
        for suffix in _BLOCK_TO_TIMM:
            shapes[f'layers.{i}.{suffix}'] = block[suffix]
    shapes['ln1.weight'] = (c, )
    shapes['ln1.bias'] = (c, )
    return shapes


def inspect_encoder(encoder: Dict[str, torch.Tensor], prefix: str = '') -> ViTSpec:
    """Read the ViT's sizes from its weights and check every key and shape.

    Args:
        encoder (dict): Encoder state dict in mmpretrain ``VisionTransformer`` names.
        prefix (str): Prefix the keys had in the checkpoint, used in error messages.

    Returns:
        ViTSpec: The sizes.

    Raises:
        KeyError: A key the encoder must have is missing, or it has a key that is
            not part of a ViT encoder.
        ValueError: A tensor has the wrong shape.
    """
    def need(key):
        if key not in encoder:
            raise KeyError(f'missing key {prefix + key!r} in the source encoder')
        return encoder[key]

    cls_token = need('cls_token')
    proj = need('patch_embed.projection.weight')
    pos_embed = need('pos_embed')
    if proj.ndim != 4 or proj.shape[2] != proj.shape[3]:
        raise ValueError(f'{prefix}patch_embed.projection.weight has shape '
                         f'{tuple(proj.shape)}, expected (C, in_channels, p, p)')
    if pos_embed.ndim != 3:
        raise ValueError(f'{prefix}pos_embed has shape {tuple(pos_embed.shape)}, '
                         'expected (1, 1 + L, C)')
    num_patches = pos_embed.shape[1] - 1
    side = math.isqrt(max(num_patches, 0))
    if side * side != num_patches or side == 0:
        raise ValueError(f'{prefix}pos_embed has {pos_embed.shape[1]} positions; '
                         'expected 1 (cls) + a square number of patch positions')
    indices = {int(m.group(1)) for m in map(_LAYER_RE.match, encoder) if m}
    if not indices:
        raise KeyError(f"no block ('{prefix}layers.<i>.*') in the source encoder")
    spec = ViTSpec(
        embed_dims=int(cls_token.shape[-1]),
        num_layers=max(indices) + 1,
        patch_size=int(proj.shape[-1]),
        in_channels=int(proj.shape[1]),
        mlp_hidden=int(need('layers.0.ffn.layers.0.0.weight').shape[0]),
        grid=(side, side))
    expected = expected_encoder_shapes(spec)
    for key, shape in expected.items():
        tensor = need(key)
        if tuple(tensor.shape) != shape:
            raise ValueError(f'{prefix + key!r} has shape {tuple(tensor.shape)}, '
                             f'expected {shape} (embed_dims={spec["embed_dims"]}, '
                             f'mlp_hidden={spec["mlp_hidden"]}, '
                             f'patch_size={spec["patch_size"]})')
    extra = [k for k in encoder if k not in expected]
    if extra:
        raise KeyError(f'unexpected key {prefix + extra[0]!r} in the source encoder '
                       f'({len(extra)} unexpected): not a parameter of an mmpretrain '
                       'VisionTransformer encoder with final norm')
    return spec


# -------------------------------------------------------------- position embedding
def resize_pos_embed(pos_embed: torch.Tensor, src_grid: Tuple[int, int],
                     dst_grid: Tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of a ``(1, 1 + H*W, C)`` position embedding, cls position kept.

    Same operation as the official MAE ``interpolate_pos_embed`` (bicubic,
    ``align_corners=False``), computed in float32.

    Args:
        pos_embed (torch.Tensor): ``(1, 1 + H*W, C)``, the cls position first.
        src_grid (tuple[int, int]): ``(H, W)`` of ``pos_embed``.
        dst_grid (tuple[int, int]): The wanted ``(H', W')``.

    Returns:
        torch.Tensor: ``(1, 1 + H'*W', C)``.
    """
    src_h, src_w = src_grid
    if pos_embed.ndim != 3 or pos_embed.shape[1] != 1 + src_h * src_w:
        raise ValueError(f'pos_embed of shape {tuple(pos_embed.shape)} does not fit '
                         f'a {src_h}x{src_w} grid plus the cls position')
    if tuple(src_grid) == tuple(dst_grid):
        return pos_embed.clone()
    cls_pos, grid_pos = pos_embed[:, :1], pos_embed[:, 1:]
    dim = pos_embed.shape[-1]
    grid_pos = grid_pos.reshape(1, src_h, src_w, dim).permute(0, 3, 1, 2).float()
    grid_pos = F.interpolate(grid_pos, size=tuple(dst_grid), mode='bicubic',
                             align_corners=False)
    grid_pos = grid_pos.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)
    return torch.cat([cls_pos, grid_pos], dim=1)


# ------------------------------------------------------------------------ renaming
def mmpretrain_to_timm_key(key: str) -> str:
    """timm ``VisionTransformer`` name of an mmpretrain ViT parameter name."""
    if key in _TOP_TO_TIMM:
        return _TOP_TO_TIMM[key]
    match = _LAYER_RE.match(key)
    if match and match.group(2) in _BLOCK_TO_TIMM:
        return f'blocks.{match.group(1)}.{_BLOCK_TO_TIMM[match.group(2)]}'
    raise KeyError(f'no timm name for ViT parameter {key!r}')


def to_timm(encoder: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Rename an encoder to timm ``VisionTransformer`` names."""
    return OrderedDict((mmpretrain_to_timm_key(k), v) for k, v in encoder.items())


def to_mmseg(encoder: Dict[str, torch.Tensor],
             qv_bias: bool = False) -> 'OrderedDict[str, torch.Tensor]':
    """Rename an encoder to mmseg (1.2.2) ``MAE``/``BEiT`` backbone names.

    mmseg's ``MAE`` backbone builds its blocks with a full qkv bias
    (``layers.i.attn.qkv.{weight,bias}``), and its other names (``patch_embed.projection``,
    ``layers.i.ln1``/``ln2``, ``layers.i.ffn.layers.0.0``/``1``, final norm ``ln1``)
    equal mmpretrain's, so for ``MAE`` the weights pass unchanged. mmseg's ``BEiT``
    (``qv_bias=True``) instead has ``attn.q_bias`` and ``attn.v_bias`` and no k bias:
    ``qv_bias=True`` splits the qkv bias that way and drops the k part. Dropping it is
    exact: the k bias adds ``q . b_k`` to every logit of a query's attention row, a
    constant per query, which the softmax over keys cancels.

    Args:
        encoder (dict): Encoder state dict in mmpretrain names.
        qv_bias (bool): Write BEiT-style ``q_bias``/``v_bias``. Defaults to False
            (mmseg ``MAE``).

    Returns:
        OrderedDict: The renamed state dict.
    """
    out = OrderedDict()
    for key, value in encoder.items():
        if qv_bias and key.endswith('.attn.qkv.bias'):
            base = key[:-len('qkv.bias')]
            q_bias, _, v_bias = value.chunk(3)
            out[base + 'q_bias'] = q_bias.clone()
            out[base + 'v_bias'] = v_bias.clone()
        else:
            out[key] = value
    return out


def target_notes(target: str, spec: dict) -> List[str]:
    """What the target model initialises itself, or leaves unused, after loading."""
    last = spec['num_layers'] - 1
    if target == 'mmpretrain':
        return [
            'the classification head (e.g. head.layers.head.* of VisionTransformerClsHead '
            'or head.fc.* of LinearClsHead) is initialised by the classifier',
            "with out_type='avg_featmap' the pooled-feature norm ln2.* is new; with "
            'final_norm=False (the MAE fine-tuning recipe) ln1.* is left unused',
        ]
    if target == 'mmdet':
        return [
            'everything outside the backbone (neck, RPN and RoI heads) is initialised '
            'by the detector',
            'parameters a windowed/ViTDet backbone adds (relative position tables, '
            'window settings) are initialised by the backbone',
            'ln1.* (final norm) is used only by backbones built with final_norm=True',
        ]
    if target == 'mmseg':
        return [
            f'layers.{{0..{last}}}.attn.relative_position_bias_table: new, zeros in '
            "mmseg's MAE (no effect on the output)",
            f'layers.{{0..{last}}}.gamma_1/gamma_2 (layer scale): new, set to '
            'init_values; init_values=1.0 reproduces the pretrained encoder exactly',
            'layers.*.attn.relative_position_index: buffers computed by the backbone',
            "build the backbone with norm_cfg=dict(type='LN', eps=1e-6), the "
            "pretraining encoder's LayerNorm eps",
            "ln1.* (final norm) is used only with final_norm=True (mmseg's MAE "
            'default False; its loader ignores it otherwise)',
            'neck, decode head and auxiliary head are initialised by the segmentor',
        ]
    if target == 'timm':
        return [
            "nothing for num_classes=0 with global_pool='token' (strict loading works)",
            'num_classes>0: head.weight/head.bias are new',
            "global_pool='avg': fc_norm.* is new and norm.* is unused "
            '(load with strict=False)',
        ]
    raise ValueError(f'target must be one of {TARGETS}, got {target!r}')


def timm_model_hint(spec: dict, img_size: int) -> str:
    """How a timm user builds the matching model."""
    key = (spec['embed_dims'], spec['num_layers'], spec['patch_size'])
    if key in TIMM_MODELS:
        size = '' if img_size == 224 else f', img_size={img_size}'
        return f"timm.create_model('{TIMM_MODELS[key]}', num_classes=0{size})"
    return ('timm.models.vision_transformer.VisionTransformer('
            f'img_size={img_size}, patch_size={spec["patch_size"]}, '
            f'embed_dim={spec["embed_dims"]}, depth={spec["num_layers"]}, '
            f'num_heads=<as in your config>, '
            f'mlp_ratio={spec["mlp_hidden"] / spec["embed_dims"]:g}, num_classes=0)')


# ---------------------------------------------------------------------- the pipeline
def convert_state_dict(state_dict: Dict[str, torch.Tensor],
                       meta: Optional[dict] = None,
                       target: str = 'mmpretrain',
                       branch: Optional[str] = None,
                       algo: str = 'auto',
                       img_size: Optional[int] = None) -> Tuple[dict, dict, List[str]]:
    """Convert a pretraining state dict into a target backbone's weights.

    Args:
        state_dict (dict): The pretraining checkpoint's state dict.
        meta (dict, optional): Its meta (used to detect the algorithm).
        target (str): One of :data:`TARGETS`.
        branch (str, optional): 'student' or 'teacher'; defaults to the branch the
            algorithm's paper fine-tunes (:data:`DEFAULT_BRANCH`).
        algo (str): One of :data:`ALGORITHMS`, or 'auto' to detect it.
        img_size (int, optional): Input size of the target; the position embedding is
            resized (bicubic, cls position kept) to ``img_size // patch_size`` patches
            per side. None keeps the pretraining size.

    Returns:
        tuple[dict, dict, list[str]]: The converted state dict (no prefix), the meta
        to store with it, and notes on what the target initialises itself.
    """
    if target not in TARGETS:
        raise ValueError(f'target must be one of {TARGETS}, got {target!r}')
    if algo == 'auto':
        algo, algo_source = detect_algorithm(state_dict, meta)
    elif algo in ALGORITHMS:
        algo_source = 'given'
    else:
        raise ValueError(f"algo must be 'auto' or one of {ALGORITHMS}, got {algo!r}")
    branch_source = 'given'
    if branch is None:
        branch, branch_source = default_branch(algo), f'default for {algo}'
    encoder = extract_encoder(state_dict, branch)
    prefix = BRANCH_PREFIXES[branch]
    spec = inspect_encoder(encoder, prefix)

    src_grid = spec['grid']
    dst_grid = src_grid
    if img_size is not None:
        if not isinstance(img_size, int) or img_size <= 0 \
                or img_size % spec['patch_size']:
            raise ValueError(f'img_size={img_size!r} must be a positive multiple of '
                             f'the patch size {spec["patch_size"]}')
        dst_grid = (img_size // spec['patch_size'], ) * 2
    encoder = OrderedDict(encoder)
    encoder['pos_embed'] = resize_pos_embed(encoder['pos_embed'], src_grid, dst_grid)
    encoder = OrderedDict((k, v.detach().clone().contiguous())
                          for k, v in encoder.items())

    if target == 'timm':
        converted = to_timm(encoder)
    elif target == 'mmseg':
        converted = to_mmseg(encoder)
    else:
        converted = encoder

    out_img_size = dst_grid[0] * spec['patch_size']
    notes = target_notes(target, spec)
    if target == 'timm':
        notes.insert(0, 'build it with ' + timm_model_hint(spec, out_img_size))
    out_meta = dict(
        target=target, algorithm=algo, algorithm_source=algo_source, branch=branch,
        branch_source=branch_source, source_prefix=prefix,
        embed_dims=spec['embed_dims'], num_layers=spec['num_layers'],
        patch_size=spec['patch_size'], mlp_hidden=spec['mlp_hidden'],
        img_size=out_img_size, pretrain_img_size=src_grid[0] * spec['patch_size'],
        grid=list(dst_grid), notes=list(notes))
    return converted, out_meta, notes
