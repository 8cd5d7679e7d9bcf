"""Cosine distance between predictions and teacher targets."""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class CosineDistanceLoss(BaseModule):
    """``1 - cos(target, pred)`` averaged over everything but ``dim``.

    The official SdAE loop calls ``F.cosine_similarity(teacher, student)`` with its default
    ``dim=1`` on tensors shaped ``(B * folds, tokens_per_fold, C)``: the similarity is taken
    along the *token* axis of each fold, per channel, then averaged. ``dim=1`` (default)
    reproduces that; ``dim=-1`` gives the per-token cosine the paper describes (see
    docs/fidelity.md).

    Args:
        dim (int): Axis along which the cosine is taken. Defaults to 1.
        eps (float): ``eps`` of ``F.cosine_similarity``. Defaults to 1e-8.
        loss_weight (float): Weight of the loss. Defaults to 1.
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8, loss_weight: float = 1.) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss between ``pred`` and ``target`` of equal shape."""
        if pred.shape != target.shape:
            raise ValueError(f'pred {tuple(pred.shape)} and target {tuple(target.shape)} '
                             'differ in shape')
        cos = F.cosine_similarity(target, pred, dim=self.dim, eps=self.eps)
        return self.loss_weight * (1 - cos.mean())
