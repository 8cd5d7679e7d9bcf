"""``init_cfg=dict(type='PretrainedViT', checkpoint=...)``: a strict pretrained ViT init.

mmengine's ``Pretrained`` initialiser loads with ``strict=False`` and only warns about keys
that do not fit, so a wrong file trains from partly random weights. This one reads any
checkpoint :mod:`sdae_mm.checkpoint` knows (a converted backbone, an sdae-mm or official
pretraining file) and loads its encoder strictly into an mmpretrain ``VisionTransformer``:
the only keys it may lack are the pooled-feature norm ``ln2`` that ``out_type='avg_featmap'``
adds, the only keys it may leave unused the final norm ``ln1`` of a backbone built with
``final_norm=False``; the position embedding is resized to the backbone's grid.
"""
from typing import Optional

import torch.nn as nn
from mmengine.registry import WEIGHT_INITIALIZERS

from .load import load_encoder, load_state_dict_strict

__all__ = ['PretrainedViTInit']


@WEIGHT_INITIALIZERS.register_module(name='PretrainedViT')
class PretrainedViTInit:
    """Strict initialisation of a ViT backbone from a pretrained checkpoint.

    Args:
        checkpoint (str): The checkpoint (any layout of :mod:`sdae_mm.checkpoint`).
        branch (str, optional): 'student' or 'teacher' of a pretraining checkpoint;
            default: the branch the method's paper fine-tunes.
    """

    def __init__(self, checkpoint: str, branch: Optional[str] = None) -> None:
        self.checkpoint = checkpoint
        self.branch = branch

    def __call__(self, module: nn.Module) -> dict:
        state_dict, meta = load_encoder(self.checkpoint, target='mmpretrain',
                                        branch=self.branch)
        grid = getattr(module, 'patch_resolution', None)
        report = load_state_dict_strict(
            module, state_dict, self.checkpoint, new_keys=(r'ln2\.weight', r'ln2\.bias'),
            unused_keys=(r'ln1\.weight', r'ln1\.bias'),
            pos_grid=tuple(grid) if grid is not None else None,
            num_extra_tokens=getattr(module, 'num_extra_tokens', 1))
        module._pretrained_report = dict(report, source=meta)
        return report

    def _get_init_info(self) -> str:
        return f'{self.__class__.__name__}: load from {self.checkpoint}'
