"""Loading pretrained ViT checkpoints into the detection backbones.

Both detection backbones use mmpretrain ``VisionTransformer`` names, so any checkpoint that
:mod:`sdae_mm.checkpoint` reads (a ``tools/convert_checkpoint.py --to mmdet`` output, an
sdae-mm pretraining checkpoint, the official SdAE, dBOT, RC-MAE or MAE files, a timm ViT)
gives the encoder directly; loading is strict (:func:`~sdae_mm.checkpoint.
load_state_dict_strict`): ``pos_embed`` is resized to the backbone's grid (its class-token
slot dropped when the backbone keeps none, as ViTDet), relative-position tables of another
length are resized, keys unused by design (``unused_keys``) are listed, and anything else
that does not fit is a :class:`CheckpointMismatchError` naming every such key.
"""
from typing import Iterable, Optional, Sequence

import torch.nn as nn

from sdae_mm.checkpoint import (CheckpointMismatchError, load_encoder,  # noqa: F401
                                load_state_dict_strict, summarize_keys)

__all__ = ['CheckpointMismatchError', 'load_converted_backbone', 'summarize_keys']


def load_converted_backbone(module: nn.Module,
                            filename: str,
                            ignored_keys: Iterable[str] = (),
                            new_keys: Iterable[str] = (),
                            pos_grid: Optional[Sequence[int]] = None,
                            num_extra_tokens: int = 0,
                            branch: Optional[str] = None) -> dict:
    """Load a pretrained ViT encoder into a detection backbone, strictly.

    Args:
        module (nn.Module): The backbone (mmpretrain ViT names).
        filename (str): The checkpoint (any layout :mod:`sdae_mm.checkpoint` reads).
        ignored_keys (Iterable[str]): Regexes of encoder keys the backbone does not use by
            design (e.g. the final norm ``ln1.*``).
        new_keys (Iterable[str]): Regexes of backbone keys a plain encoder has not (e.g.
            adapters ``fpn1.*``, relative-position tables); they are logged.
        pos_grid (Sequence[int], optional): (H, W) grid of the backbone's ``pos_embed``.
        num_extra_tokens (int): Class-token slots at the start of the backbone's
            ``pos_embed``. Defaults to 0.
        branch (str, optional): 'student' or 'teacher' of a pretraining checkpoint.

    Returns:
        dict: ``checkpoint``, ``meta`` (provenance), ``loaded``, ``resized``, ``ignored``
        and ``initialised``.
    """
    try:
        state_dict, meta = load_encoder(str(filename), target='mmdet', branch=branch)
    except FileNotFoundError:
        raise FileNotFoundError(
            f'backbone checkpoint {str(filename)!r} does not exist. Convert a pretraining '
            'checkpoint with tools/convert_checkpoint.py (--to mmdet), or set '
            'model.backbone.checkpoint=<path> (None trains from scratch) with --cfg-options'
        ) from None
    except (KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise CheckpointMismatchError(message) from None
    report = load_state_dict_strict(module, state_dict, str(filename),
                                    new_keys=tuple(new_keys), unused_keys=tuple(ignored_keys),
                                    pos_grid=pos_grid, num_extra_tokens=num_extra_tokens)
    report['meta'] = meta
    return report
