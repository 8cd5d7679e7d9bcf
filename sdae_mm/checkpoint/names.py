"""Parameter names of a ViT encoder in each library, and the mapping between them.

Two namings cover every layout this suite reads or writes:

- ``timm``: timm ``VisionTransformer`` names, which the official MAE, SdAE, dBOT and
  RC-MAE code inherit (``patch_embed.proj``, ``blocks.i.norm1``, ``blocks.i.mlp.fc1``,
  final ``norm``; ``fc_norm`` and ``head`` in fine-tuned, globally pooled models);
- ``mmpretrain``: mmpretrain ``VisionTransformer`` names (``patch_embed.projection``,
  ``layers.i.ln1``, ``layers.i.ffn.layers.0.0``, final ``ln1``, pooled-feature norm
  ``ln2``), which mmseg's ``MAE`` and this suite's detection backbones (``PlainViT``,
  ``ViTDet``) share.

A classification head is kept as ``head.weight``/``head.bias`` in both.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

__all__ = ['NAMINGS', 'timm_to_mmpretrain_key', 'mmpretrain_to_timm_key', 'rename',
           'naming_of', 'summarize_keys']

NAMINGS = ('timm', 'mmpretrain')

_BLOCK = (  # (timm suffix, mmpretrain suffix) inside block i
    ('norm1', 'ln1'), ('attn.qkv', 'attn.qkv'), ('attn.proj', 'attn.proj'),
    ('norm2', 'ln2'), ('mlp.fc1', 'ffn.layers.0.0'), ('mlp.fc2', 'ffn.layers.1'))
_TOP = (  # (timm, mmpretrain) outside the blocks
    ('cls_token', 'cls_token'), ('pos_embed', 'pos_embed'),
    ('patch_embed.proj.weight', 'patch_embed.projection.weight'),
    ('patch_embed.proj.bias', 'patch_embed.projection.bias'),
    ('norm.weight', 'ln1.weight'), ('norm.bias', 'ln1.bias'),
    ('fc_norm.weight', 'ln2.weight'), ('fc_norm.bias', 'ln2.bias'),
    ('head.weight', 'head.weight'), ('head.bias', 'head.bias'))
_TIMM_TOP = dict(_TOP)
_MMPRETRAIN_TOP = {m: t for t, m in _TOP}
_TIMM_BLOCK = dict(_BLOCK)
_MMPRETRAIN_BLOCK = {m: t for t, m in _BLOCK}
_TIMM_RE = re.compile(r'^blocks\.(\d+)\.(.+)\.(weight|bias)$')
_MMPRETRAIN_RE = re.compile(r'^layers\.(\d+)\.(.+)\.(weight|bias)$')


def timm_to_mmpretrain_key(key: str) -> str:
    """mmpretrain name of a timm ViT parameter name (KeyError if it has none)."""
    if key in _TIMM_TOP:
        return _TIMM_TOP[key]
    m = _TIMM_RE.match(key)
    if m and m.group(2) in _TIMM_BLOCK:
        return f'layers.{m.group(1)}.{_TIMM_BLOCK[m.group(2)]}.{m.group(3)}'
    raise KeyError(key)


def mmpretrain_to_timm_key(key: str) -> str:
    """timm name of an mmpretrain ViT parameter name (KeyError if it has none)."""
    if key in _MMPRETRAIN_TOP:
        return _MMPRETRAIN_TOP[key]
    m = _MMPRETRAIN_RE.match(key)
    if m and m.group(2) in _MMPRETRAIN_BLOCK:
        return f'blocks.{m.group(1)}.{_MMPRETRAIN_BLOCK[m.group(2)]}.{m.group(3)}'
    raise KeyError(key)


def naming_of(keys) -> str:
    """'timm' or 'mmpretrain' from a state dict's keys, or '' when neither."""
    keys = list(keys)
    if any(k.startswith('blocks.') for k in keys) or 'patch_embed.proj.weight' in keys:
        return 'timm'
    if any(k.startswith('layers.') for k in keys) or \
            'patch_embed.projection.weight' in keys:
        return 'mmpretrain'
    return ''


def rename(state_dict: Dict[str, torch.Tensor], src: str,
           dst: str) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Rename a ViT state dict from naming ``src`` to ``dst``.

    Returns:
        tuple: The renamed dict and the keys that have no name in ``dst``.
    """
    for naming in (src, dst):
        if naming not in NAMINGS:
            raise ValueError(f'naming must be one of {NAMINGS}, got {naming!r}')
    if src == dst:
        return OrderedDict(state_dict), []
    fn = timm_to_mmpretrain_key if src == 'timm' else mmpretrain_to_timm_key
    out, unknown = OrderedDict(), []
    for key, value in state_dict.items():
        try:
            out[fn(key)] = value
        except KeyError:
            unknown.append(key)
    return out, unknown


def summarize_keys(keys) -> List[str]:
    """Collapse per-block names: ``layers.0.x`` .. ``layers.5.x`` -> ``layers.{0-5}.x``.

    Args:
        keys (Iterable[str]): Parameter names.

    Returns:
        list[str]: Sorted summary lines (``{0,2,4}`` when not contiguous).
    """
    groups: Dict[str, List[int]] = OrderedDict()
    for key in sorted(keys):
        m = re.match(r'^(.*?\.)(\d+)(\..*)$', key)
        if m is None:
            groups.setdefault(key, [])
            continue
        groups.setdefault(m.group(1) + '{}' + m.group(3), []).append(int(m.group(2)))
    lines = []
    for pattern, idx in groups.items():
        if not idx:
            lines.append(pattern)
            continue
        idx = sorted(set(idx))
        if len(idx) == 1:
            lines.append(pattern.format(idx[0]))
        elif idx == list(range(idx[0], idx[-1] + 1)):
            lines.append(pattern.format(f'{{{idx[0]}-{idx[-1]}}}'))
        else:
            lines.append(pattern.format('{' + ','.join(map(str, idx)) + '}'))
    return sorted(lines)
