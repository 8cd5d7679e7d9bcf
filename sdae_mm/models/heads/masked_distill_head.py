"""Feature distillation head whose loss is averaged over chosen positions (dBOT)."""
import torch
from mmpretrain.registry import MODELS

from .distill_head import FeatureDistillHead, normalize_per_token


@MODELS.register_module()
class MaskedFeatureDistillHead(FeatureDistillHead):
    """:class:`FeatureDistillHead` with a position mask passed to the loss.

    The target is normalised per token (official dBOT ``norm_feature_loss``: mean and
    unbiased variance over channels, ``eps=1e-6``), both tensors are cast to float32, and
    the loss module receives ``(pred, target, mask)``, e.g. :class:`MaskedSmoothL1Loss`.

    Args:
        loss (dict): Loss config taking a mask, e.g. ``dict(type='MaskedSmoothL1Loss')``.
        norm_target (bool): Normalise the target per token. Defaults to True.
        norm_eps (float): ``eps`` of that normalisation. Defaults to 1e-6.
        unbiased_var (bool): Unbiased variance in that normalisation. Defaults to True.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def loss(self, pred: torch.Tensor, target: torch.Tensor,  # type: ignore[override]
             mask: torch.Tensor) -> torch.Tensor:
        """Loss of ``pred`` against ``target`` (``(B, N, C)``) over ``mask`` (``(B, N)``)."""
        if self.norm_target:
            target = normalize_per_token(target, self.norm_eps, self.unbiased_var)
        return self.loss_module(pred.float(), target.float(), mask)
