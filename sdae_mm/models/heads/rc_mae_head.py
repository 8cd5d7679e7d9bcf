"""Head of RC-MAE: MAE's pixel reconstruction plus reconstruction consistency."""
from typing import Dict

import torch
from mmpretrain.models.heads import MAEPretrainHead
from mmpretrain.registry import MODELS


@MODELS.register_module()
class RCMAEHead(MAEPretrainHead):
    """mmpretrain's :class:`MAEPretrainHead` plus the consistency term of `RC-MAE
    <https://arxiv.org/abs/2210.02077>`_.

    ``loss_rec``: the student's prediction against the (``norm_pix``-normalised) patches
    of the input, on the masked patches (MAE). ``loss_rc``: ``consistency_weight`` times
    the same loss between the student's and the teacher's predictions on the same
    masked patches (official ``gamma * rec_cons_loss``). Both use the head's ``loss``
    module, ``PixelReconstructionLoss('L2')`` being the official squared error averaged
    over channels, then over masked patches.

    Args:
        loss (dict): Loss config. Defaults to ``PixelReconstructionLoss('L2')``.
        norm_pix (bool): Normalise each target patch (official ``--norm_pix_loss``).
            Defaults to True.
        patch_size (int): Patch size. Defaults to 16.
        in_channels (int): Image channels. Defaults to 3.
        consistency_weight (float): Official ``gamma``. Defaults to 1.0.
    """

    def __init__(self,
                 loss: dict = dict(type='PixelReconstructionLoss', criterion='L2'),
                 norm_pix: bool = True,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 consistency_weight: float = 1.0) -> None:
        super().__init__(loss=loss, norm_pix=norm_pix, patch_size=patch_size,
                         in_channels=in_channels)
        if consistency_weight < 0:
            raise ValueError(f'consistency_weight must be >= 0, got {consistency_weight}')
        self.consistency_weight = consistency_weight

    def loss(self, pred: torch.Tensor, target: torch.Tensor,  # type: ignore[override]
             mask: torch.Tensor, teacher_pred: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Both terms.

        Args:
            pred (Tensor): Student predictions ``(B, L, p*p*C)``.
            target (Tensor): Input images ``(B, C, H, W)``.
            mask (Tensor): ``(B, L)``, 1 = masked.
            teacher_pred (Tensor): Teacher predictions ``(B, L, p*p*C)``.

        Returns:
            dict[str, Tensor]: ``loss_rec`` and ``loss_rc``; their sum is the official loss.
        """
        mask = mask.to(pred.dtype)
        loss_rec = self.loss_module(pred, self.construct_target(target), mask)
        loss_rc = self.loss_module(pred, teacher_pred.detach(), mask)
        return dict(loss_rec=loss_rec, loss_rc=self.consistency_weight * loss_rc)
