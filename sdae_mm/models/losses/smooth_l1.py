"""Smooth L1 distance between predicted and teacher features, averaged over chosen positions."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class MaskedSmoothL1Loss(BaseModule):
    """Smooth L1 per element, averaged over channels, then over the positions in ``mask``.

    ``sum(mask * mean_c(smooth_l1(pred, target))) / sum(mask)`` over the whole batch, as
    the official dBOT ``forward_loss`` computes it (``beta=2.0``). Without a mask every
    position counts.

    Args:
        beta (float): Threshold between the quadratic and the linear part. Defaults to 2.0.
        loss_weight (float): Weight of the loss. Defaults to 1.
    """

    def __init__(self, beta: float = 2.0, loss_weight: float = 1.) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f'beta must be positive, got {beta}')
        self.beta = beta
        self.loss_weight = loss_weight

    def forward(self,
                pred: torch.Tensor,
                target: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Loss of ``pred`` against ``target`` (both ``(B, N, C)``); ``mask`` is ``(B, N)``."""
        if pred.shape != target.shape:
            raise ValueError(f'pred {tuple(pred.shape)} and target {tuple(target.shape)} '
                             'differ in shape')
        loss = F.smooth_l1_loss(pred, target, reduction='none', beta=self.beta).mean(dim=-1)
        if mask is None:
            return self.loss_weight * loss.mean()
        if mask.shape != loss.shape:
            raise ValueError(f'mask {tuple(mask.shape)} does not match the positions '
                             f'{tuple(loss.shape)}')
        mask = mask.to(loss.dtype)
        return self.loss_weight * ((loss * mask).sum() / mask.sum())
