"""Strict loading: every key of a checkpoint fits the model, or an error names it.

Only keys a model creates by design (relative-position tables, layer scale, adapters, new
heads: ``new_keys`` patterns) may be missing from the checkpoint; they are logged.
"""
import re
from collections import OrderedDict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .convert import convert_layout
from .io import read_checkpoint
from .layouts import _strip_module, detect_layout
from .names import summarize_keys
from .pos_embed import resize_pos_embed, resize_rel_pos_table, split_pos_embed_length

__all__ = ['CheckpointMismatchError', 'load_encoder', 'load_state_dict_strict',
           'load_model_checkpoint', 'check_pretrained_inits']


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is loaded into."""


def _matches(key: str, patterns: Iterable[str]) -> bool:
    return any(re.fullmatch(p, key) for p in patterns)


def load_encoder(path: str, target: str = 'mmpretrain', branch: Optional[str] = None,
                 algo: Optional[str] = None, fmt: str = 'auto',
                 prefer_teacher: bool = False) -> Tuple[OrderedDict, dict]:
    """Read any checkpoint this suite knows and return one encoder for ``target``.

    Args:
        path (str): The checkpoint (any layout of :mod:`sdae_mm.checkpoint.layouts`,
            including a ``tools/convert_checkpoint.py`` output).
        target (str): Naming of the result ('mmpretrain', 'mmseg', 'mmdet', 'timm').
        branch (str, optional): 'student' or 'teacher'; default as the method's paper.
        algo (str, optional): Overrides the detected method.
        fmt (str): Overrides the detected layout.
        prefer_teacher (bool): Without ``branch``, take the teacher when there is one.

    Returns:
        tuple: The encoder (no head, pretraining position embedding) and its metadata.
    """
    layout = detect_layout(read_checkpoint(path), fmt, path)
    if branch is None and prefer_teacher and 'teacher' in layout['branches']:
        branch = 'teacher'
    state_dict, meta, _ = convert_layout(layout, target, branch=branch, algo=algo,
                                         keep_head=False, path=path)
    meta['source'] = path
    origin = layout['meta']
    if origin.get('target') in ('mmpretrain', 'mmseg', 'mmdet', 'timm') and origin.get('branch'):
        # a tools/convert_checkpoint.py output: report where its encoder came from
        meta.update(algorithm=origin.get('algorithm'), branch=origin['branch'],
                    converted_from=origin.get('source'))
    return state_dict, meta


def check_state_dict_fits(module: nn.Module,
                          state_dict: Dict[str, torch.Tensor],
                          source: str,
                          new_keys: Sequence[str] = (),
                          unused_keys: Sequence[str] = (),
                          pos_grid: Optional[Sequence[int]] = None,
                          num_extra_tokens: int = 1) -> tuple:
    """The checking half of :func:`load_state_dict_strict` (same arguments): the tensors to
    load (resized where needed), what was resized, ignored and left missing.

    Raises:
        CheckpointMismatchError: as :func:`load_state_dict_strict`.
    """
    own = module.state_dict()
    to_load, resized, ignored, unexpected, mismatched = OrderedDict(), {}, [], [], []
    mismatched_keys = set()
    for key, value in state_dict.items():
        if key not in own:
            (ignored if _matches(key, unused_keys) else unexpected).append(key)
            continue
        ref = own[key]
        if value.shape != ref.shape and key == 'pos_embed' and pos_grid is not None \
                and value.ndim == 3 and value.shape[-1] == ref.shape[-1]:
            extra, grid = split_pos_embed_length(value.shape[1], what=f'{source}: pos_embed')
            if extra >= num_extra_tokens:
                value = resize_pos_embed(value[:, extra - num_extra_tokens:], grid,
                                         pos_grid, num_extra_tokens)
        elif value.shape != ref.shape and key.endswith(('rel_pos_h', 'rel_pos_w')) and \
                value.ndim == 2 and value.shape[1] == ref.shape[1]:
            value = resize_rel_pos_table(value, ref.shape[0])
        if value.shape != ref.shape:
            mismatched_keys.add(key)
            mismatched.append(f'{key}: checkpoint {tuple(state_dict[key].shape)} vs model '
                              f'{tuple(ref.shape)}')
            continue
        if value is not state_dict[key]:
            resized[key] = (tuple(state_dict[key].shape), tuple(value.shape))
        to_load[key] = value.to(ref.dtype)
    missing = [k for k in own if k not in to_load and k not in mismatched_keys]
    surprising = [k for k in missing if not _matches(k, new_keys)]
    if unexpected or mismatched or surprising:
        lines = [f'checkpoint {source!r} does not fit {type(module).__name__}:']
        if surprising:
            lines.append(f'  missing keys (the model has them, the checkpoint does not): '
                         f'{summarize_keys(surprising)}')
        if unexpected:
            lines.append(f'  unexpected keys (the model has no such parameter): '
                         f'{summarize_keys(unexpected)}')
        if mismatched:
            lines.append('  shape mismatches: ' + '; '.join(mismatched[:12]))
        raise CheckpointMismatchError('\n'.join(lines))
    return to_load, resized, ignored, missing


def load_state_dict_strict(module: nn.Module,
                           state_dict: Dict[str, torch.Tensor],
                           source: str,
                           new_keys: Sequence[str] = (),
                           unused_keys: Sequence[str] = (),
                           pos_grid: Optional[Sequence[int]] = None,
                           num_extra_tokens: int = 1,
                           logger: str = 'current') -> dict:
    """Load ``state_dict`` into ``module``; anything that does not fit is an error.

    ``pos_embed`` is resized to ``pos_grid`` (dropping class-token positions the module
    has none of) and relative-position tables (``rel_pos_h``/``rel_pos_w``) to the
    module's length.

    Args:
        module (nn.Module): The model.
        state_dict (dict): The weights, in the module's names.
        source (str): The file, for messages.
        new_keys (Sequence[str]): Regexes of module keys the checkpoint need not have
            (created by the model by design); they are logged.
        unused_keys (Sequence[str]): Regexes of checkpoint keys the module does not use
            by design; they are logged.
        pos_grid (Sequence[int], optional): The module's ``pos_embed`` grid.
        num_extra_tokens (int): Class-token positions of the module's ``pos_embed``.
        logger (str): Where the report goes.

    Returns:
        dict: ``checkpoint``, ``loaded``, ``resized``, ``ignored`` and ``initialised``.

    Raises:
        CheckpointMismatchError: keys the module lacks, keys it has that the checkpoint
            lacks (other than ``new_keys``), or tensors of another shape; all are named.
    """
    to_load, resized, ignored, missing = check_state_dict_fits(
        module, state_dict, source, new_keys, unused_keys, pos_grid, num_extra_tokens)
    module.load_state_dict(to_load, strict=False)
    initialised = sorted(missing)
    report = dict(checkpoint=source, loaded=sorted(to_load), resized=resized,
                  ignored=sorted(ignored), initialised=initialised)
    name = type(module).__name__
    print_log(f'{name}: loaded {len(to_load)} tensors from {source}', logger=logger)
    for key, (old, new) in resized.items():
        print_log(f'{name}: resized {key} from {old} to {new}', logger=logger)
    if ignored:
        print_log(f'{name}: checkpoint keys not used by design: {summarize_keys(ignored)}',
                  logger=logger)
    if initialised:
        print_log(f'{name}: created by the model, not in the checkpoint: '
                  f'{summarize_keys(initialised)}', logger=logger)
    return report


def _tensor_state_dict(ckpt) -> Optional[dict]:
    """The ``state_dict`` of a loaded checkpoint (or the checkpoint itself) when it is a
    dict of tensors, as mmengine's loaders take it; else None."""
    state_dict = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if isinstance(state_dict, dict) and all(
            isinstance(v, torch.Tensor) for v in state_dict.values()):
        return state_dict
    return None


def load_model_checkpoint(model: nn.Module, path: str, logger: str = 'current',
                          before_load: Optional[Callable[[dict], None]] = None) -> dict:
    """Load a whole-model checkpoint (an mmengine ``state_dict``) strictly.

    For testing a trained model (``tools/test.py``): every parameter and persistent
    buffer of the model must come from the file, with its shape.

    Args:
        model (nn.Module): The model (unwrapped).
        path (str): The checkpoint.
        logger (str): Where the report goes.
        before_load (callable, optional): Called with the loaded checkpoint dict before
            its weights are loaded (mmengine's ``after_load_checkpoint`` hooks).

    Returns:
        dict: The report of :func:`load_state_dict_strict` and the file's ``meta``.
    """
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict):
        raise CheckpointMismatchError(f'checkpoint {path!r} holds a {type(ckpt).__name__}, '
                                      'not a dict of weights')
    if before_load is not None:
        before_load(ckpt)
    state_dict = _tensor_state_dict(ckpt)
    if state_dict is None:
        raise CheckpointMismatchError(
            f"checkpoint {path!r} has no 'state_dict' of tensors (top-level keys: "
            f'{sorted(map(str, ckpt))[:10]}); convert an official or pretraining file with '
            'tools/convert_checkpoint.py first')
    report = load_state_dict_strict(model, _strip_module(state_dict), path, logger=logger)
    report['meta'] = ckpt.get('meta', {})
    return report


#: mmpretrain ``VisionTransformer`` keys a fine-tuning backbone creates (``ln2``: the norm
#: of ``out_type='avg_featmap'``) and checkpoint keys it drops (``ln1``, the final norm,
#: with ``final_norm=False``).
VIT_NEW_KEYS = (r'ln2\.weight', r'ln2\.bias')
VIT_UNUSED_KEYS = (r'ln1\.weight', r'ln1\.bias')


def _pretrained_state_dict(cfg: dict) -> Dict[str, torch.Tensor]:
    """The weights mmengine's ``Pretrained`` initialiser takes from ``cfg['checkpoint']``:
    its ``state_dict`` (or the dict itself), keys under ``prefix`` only, ``module.``
    stripped."""
    path = cfg['checkpoint']
    ckpt = read_checkpoint(path)
    state_dict = _tensor_state_dict(ckpt)
    if not state_dict:
        keys = sorted(map(str, ckpt))[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointMismatchError(
            f'init_cfg checkpoint {path!r} has no state_dict of tensors ({keys}): convert it '
            'with tools/convert_checkpoint.py --to mmpretrain first')
    prefix = cfg.get('prefix')
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if not state_dict:
            raise CheckpointMismatchError(
                f'init_cfg checkpoint {path!r} has no key starting with prefix {prefix!r}')
    return _strip_module(state_dict)


def check_pretrained_inits(model: nn.Module) -> List[str]:
    """Check, before any weight is loaded, that every mmpretrain ``VisionTransformer`` of
    ``model`` whose ``init_cfg`` is mmengine's ``Pretrained`` will get a checkpoint that
    fits it.

    mmengine's ``Pretrained`` loads with ``strict=False`` and only logs what does not fit,
    so a wrong file (another architecture, a pretraining checkpoint that was not
    converted, an official layout) would fine-tune from partly random weights. The
    classification configs keep ``Pretrained`` (mmpretrain's ``VisionTransformer`` re-draws
    its position embedding after any other initialiser); ``tools/train.py`` calls this
    check instead. The position embedding may differ in grid (mmpretrain resizes it on
    load); only ``ln2`` may be new and ``ln1`` unused.

    Args:
        model (nn.Module): The built model (wrapped or not).

    Returns:
        list[str]: The checkpoints checked.

    Raises:
        CheckpointMismatchError: a missing, unexpected or mis-shaped key, named.
    """
    from mmpretrain.models import VisionTransformer
    checked = []
    for module in model.modules():
        if not isinstance(module, VisionTransformer):
            continue
        cfgs = module.init_cfg if isinstance(module.init_cfg, list) else [module.init_cfg]
        for cfg in cfgs:
            if not (isinstance(cfg, dict) and cfg.get('type') == 'Pretrained'
                    and cfg.get('checkpoint')):
                continue
            state_dict = _pretrained_state_dict(cfg)
            check_state_dict_fits(module, state_dict, cfg['checkpoint'],
                                  new_keys=VIT_NEW_KEYS, unused_keys=VIT_UNUSED_KEYS,
                                  pos_grid=tuple(module.patch_resolution),
                                  num_extra_tokens=module.num_extra_tokens)
            checked.append(cfg['checkpoint'])
    return checked
