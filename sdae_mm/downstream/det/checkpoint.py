"""Loading converted sdae-mm backbone checkpoints into the detection backbones.

``tools/convert_checkpoint.py --to mmdet`` writes ``{'state_dict': {...}, 'meta': {...}}``
whose keys carry no prefix and follow mmpretrain's ``VisionTransformer`` naming (the teacher
or the student encoder of a pretraining run, as chosen at conversion). Both detection
backbones use those names, so loading is a plain ``load_state_dict`` plus three adaptations:

* ``pos_embed`` is resized (bicubic, as mmpretrain and detectron2 do) from the grid it was
  pretrained on to the backbone's own grid, and its class-token slot is dropped when the
  backbone keeps no class token (ViTDet);
* relative position tables that exist in both but differ in length are resized linearly
  (what ViTDet does at run time);
* keys that a backbone leaves unused by design (e.g. the final norm ``ln1.*``) are listed
  as ignored instead of failing.

Anything else that does not fit, a key the backbone does not have or a tensor of another
shape, raises :class:`CheckpointMismatchError` naming every such key. Keys of the backbone
that the checkpoint does not provide are initialised by the backbone itself and are
reported (logged, and returned) so a run states exactly what it did not load.
"""
import math
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger, print_log
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.models.utils import resize_pos_embed

__all__ = ['CheckpointMismatchError', 'load_converted_backbone', 'summarize_keys']

#: Prefixes of a full pretraining checkpoint (common contract); a converted one has none.
_PRETRAIN_PREFIXES = ('backbone.', 'teacher.', 'neck.', 'teacher_neck.', 'head.',
                      'target_generator.')


class CheckpointMismatchError(ValueError):
    """A converted checkpoint does not fit the backbone it is loaded into."""


def summarize_keys(keys: Iterable[str]) -> List[str]:
    """Collapse per-block names: ``layers.0.attn.rel_pos_h`` .. ``layers.5...`` become
    ``layers.{0-5}.attn.rel_pos_h`` (or ``{0,2,4}`` when not contiguous).

    Args:
        keys (Iterable[str]): Parameter names.

    Returns:
        list[str]: Sorted summary lines.
    """
    groups: Dict[str, List[int]] = OrderedDict()
    for key in sorted(keys):
        m = re.match(r'^(.*?\.)(\d+)(\..*)$', key)
        if m is None:
            groups.setdefault(key, [])
            continue
        pattern = m.group(1) + '{}' + m.group(3)
        groups.setdefault(pattern, []).append(int(m.group(2)))
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


def _split_extra_tokens(length: int) -> Tuple[int, Tuple[int, int]]:
    """Number of extra tokens (1 = class slot, per the contract, else 0) and square grid."""
    for extra in (1, 0):
        side = math.isqrt(length - extra) if length - extra > 0 else 0
        if side > 0 and side * side == length - extra:
            return extra, (side, side)
    raise CheckpointMismatchError(
        f'pos_embed of the checkpoint has {length} positions: neither a square grid nor a '
        'square grid plus a class-token slot')


def _adapt_pos_embed(ckpt_pos: torch.Tensor, model_pos: torch.Tensor, model_extra: int,
                     model_grid: Sequence[int], mode: str = 'bicubic') -> torch.Tensor:
    """Resize a checkpoint ``pos_embed`` (1, E+L, C) to the backbone's (1, E'+L', C)."""
    if ckpt_pos.dim() != 3 or ckpt_pos.shape[0] != 1:
        raise CheckpointMismatchError(
            f'pos_embed of the checkpoint must have shape (1, L, C), got {tuple(ckpt_pos.shape)}')
    if ckpt_pos.shape[2] != model_pos.shape[2]:
        raise CheckpointMismatchError(
            f'pos_embed: checkpoint has {ckpt_pos.shape[2]} channels, the backbone '
            f'{model_pos.shape[2]} (shape {tuple(ckpt_pos.shape)} vs {tuple(model_pos.shape)})')
    ckpt_extra, ckpt_grid = _split_extra_tokens(ckpt_pos.shape[1])
    if ckpt_extra < model_extra:
        raise CheckpointMismatchError(
            f'pos_embed: the backbone keeps {model_extra} class-token position(s) but the '
            f'checkpoint has none (shape {tuple(ckpt_pos.shape)})')
    # drop class-token slots the backbone does not use (ViTDet has no class token)
    pos = ckpt_pos[:, ckpt_extra - model_extra:]
    pos = resize_pos_embed(pos, ckpt_grid, tuple(model_grid), mode=mode,
                           num_extra_tokens=model_extra)
    return pos.to(model_pos.dtype)


def _adapt_rel_pos(ckpt_rel: torch.Tensor, model_rel: torch.Tensor) -> torch.Tensor:
    """Linearly resize a (2S-1, C) relative position table to the backbone's length."""
    if ckpt_rel.dim() != 2 or ckpt_rel.shape[1] != model_rel.shape[1]:
        raise CheckpointMismatchError(
            f'relative position table of shape {tuple(ckpt_rel.shape)} cannot be resized to '
            f'{tuple(model_rel.shape)}')
    out = F.interpolate(ckpt_rel.float().t().unsqueeze(0), size=model_rel.shape[0],
                        mode='linear', align_corners=False)
    return out.squeeze(0).t().contiguous().to(model_rel.dtype)


def _read_state_dict(filename: str, map_location: str) -> Tuple[dict, dict]:
    is_local = '://' not in filename and not filename.startswith(('open-mmlab:', 'mmcls:'))
    if is_local and not osp.isfile(filename):
        raise FileNotFoundError(
            f'backbone checkpoint {filename!r} does not exist. Convert a pretraining '
            'checkpoint with tools/convert_checkpoint.py (--to mmdet), or set '
            'model.backbone.checkpoint=<path> (None trains from scratch) with --cfg-options')
    ckpt = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    if not isinstance(ckpt, dict):
        raise CheckpointMismatchError(
            f'{filename!r} holds a {type(ckpt).__name__}, expected a dict with a state_dict')
    meta = ckpt.get('meta', {}) if isinstance(ckpt.get('meta', {}), dict) else {}
    state_dict = ckpt['state_dict'] if 'state_dict' in ckpt else ckpt
    if not isinstance(state_dict, dict) or not all(
            isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointMismatchError(
            f'{filename!r}: state_dict must map names to tensors')
    return state_dict, meta


def load_converted_backbone(module: nn.Module,
                            filename: str,
                            ignored_keys: Iterable[str] = (),
                            pos_grid: Optional[Sequence[int]] = None,
                            num_extra_tokens: int = 0,
                            map_location: str = 'cpu',
                            logger: Optional[MMLogger] = None) -> dict:
    """Load a converted (prefix-free) backbone checkpoint into ``module``.

    Args:
        module (nn.Module): The backbone; its ``state_dict()`` names are the target names.
        filename (str): Checkpoint path (or any URI mmengine's ``CheckpointLoader`` reads).
        ignored_keys (Iterable[str]): Checkpoint keys the backbone leaves unused by design;
            they are reported as ignored when present.
        pos_grid (Sequence[int], optional): (H, W) grid of the backbone's ``pos_embed``
            parameter. Required when the backbone has a ``pos_embed``.
        num_extra_tokens (int): Class-token slots at the start of the backbone's
            ``pos_embed``. Defaults to 0.
        map_location (str): Where tensors are loaded. Defaults to 'cpu'.
        logger (MMLogger, optional): Where the report goes. Defaults to the current logger.

    Returns:
        dict: ``checkpoint`` (filename), ``meta``, ``loaded`` (keys taken from the file),
        ``resized`` ({key: (old shape, new shape)}), ``ignored`` (file keys not used by
        design) and ``initialised`` (backbone keys the file does not provide, left to the
        backbone's own initialisation).

    Raises:
        FileNotFoundError: ``filename`` is a local path that does not exist.
        CheckpointMismatchError: the file is not a converted checkpoint, or holds keys the
            backbone lacks, or tensors whose shapes cannot be adapted.
    """
    state_dict, meta = _read_state_dict(filename, map_location)
    ignored_keys = set(ignored_keys)
    target = module.state_dict()
    prefixed = sorted(k for k in state_dict for p in _PRETRAIN_PREFIXES
                      if k.startswith(p) and k[len(p):] in target)
    if prefixed:
        raise CheckpointMismatchError(
            f'{filename!r} looks like a full pretraining checkpoint (keys such as '
            f'{prefixed[:3]}); convert it first: tools/convert_checkpoint.py --to mmdet '
            '(choosing the teacher or the student encoder)')

    to_load, resized, ignored, unexpected, mismatched = OrderedDict(), {}, [], [], []
    for key, value in state_dict.items():
        if key in ignored_keys:
            ignored.append(key)
            continue
        if key not in target:
            unexpected.append(key)
            continue
        ref = target[key]
        if key == 'pos_embed' and value.shape != ref.shape:
            if pos_grid is None:
                raise ValueError('pos_grid is required to resize pos_embed')
            value = _adapt_pos_embed(value, ref, num_extra_tokens, pos_grid)
            resized[key] = (tuple(state_dict[key].shape), tuple(value.shape))
        elif key.endswith(('rel_pos_h', 'rel_pos_w')) and value.shape != ref.shape:
            value = _adapt_rel_pos(value, ref)
            resized[key] = (tuple(state_dict[key].shape), tuple(value.shape))
        if value.shape != ref.shape:
            mismatched.append(f'{key}: checkpoint {tuple(value.shape)} vs backbone '
                              f'{tuple(ref.shape)}')
            continue
        to_load[key] = value

    if unexpected or mismatched:
        lines = [f'checkpoint {filename!r} does not fit {type(module).__name__}:']
        if unexpected:
            lines.append(f'  keys the backbone does not have: {summarize_keys(unexpected)}')
        if mismatched:
            lines.append('  shape mismatches: ' + '; '.join(mismatched))
        raise CheckpointMismatchError('\n'.join(lines))

    result = module.load_state_dict(to_load, strict=False)
    if result.unexpected_keys:  # cannot happen: every key was checked against state_dict()
        raise CheckpointMismatchError(f'unexpected keys {result.unexpected_keys}')
    initialised = sorted(k for k in target if k not in to_load)

    report = dict(checkpoint=filename, meta=meta, loaded=sorted(to_load), resized=resized,
                  ignored=sorted(ignored), initialised=initialised)
    _log_report(report, type(module).__name__, logger)
    return report


def _log_report(report: dict, name: str, logger: Optional[MMLogger]) -> None:
    logger = logger or MMLogger.get_current_instance()
    meta = report['meta']
    source = ', '.join(f'{k}={meta[k]}' for k in ('algorithm', 'branch', 'source')
                       if k in meta)
    print_log(
        f'{name}: loaded {len(report["loaded"])} tensors from {report["checkpoint"]}'
        + (f' ({source})' if source else ''), logger=logger)
    for key, (old, new) in report['resized'].items():
        print_log(f'{name}: resized {key} from {old} to {new}', logger=logger)
    if report['ignored']:
        print_log(f'{name}: checkpoint keys not used by design: '
                  f'{summarize_keys(report["ignored"])}', logger=logger)
    if report['initialised']:
        print_log(f'{name}: initialised by the backbone itself (not in the checkpoint): '
                  f'{summarize_keys(report["initialised"])}', logger=logger)
    else:
        print_log(f'{name}: every backbone tensor came from the checkpoint', logger=logger)
