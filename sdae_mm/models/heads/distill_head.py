"""Head of feature distillation: target normalisation and the loss."""
import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


def normalize_per_token(x: torch.Tensor, eps: float = 1e-6, unbiased: bool = True) -> torch.Tensor:
    """Parameter-free normalisation of each token over its channels, in float32.

    ``(x - mean) / sqrt(var + eps)``. The official SdAE loop uses ``Tensor.var``'s default
    (unbiased) variance and ``eps=1e-6``.
    """
    x = x.float()
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=unbiased)
    return (x - mean) / (var + eps).sqrt()


@MODELS.register_module()
class FeatureDistillHead(BaseModule):
    """Compares student predictions with teacher features on the same patches.

    The target is normalised per token (``norm_target``); both are cast to float32 before
    the loss. With ``num_views > 1`` the ``n`` tokens of each sample are regrouped into
    ``num_views`` consecutive views, ``(B * num_views, n / num_views, C)``, before the loss
    (SdAE's multi-fold layout, on which its loss is defined).

    Args:
        loss (dict): Loss config, e.g. ``dict(type='CosineDistanceLoss')``.
        norm_target (bool): Normalise the target per token. Defaults to True.
        norm_eps (float): ``eps`` of that normalisation. Defaults to 1e-6.
        unbiased_var (bool): Unbiased variance in that normalisation. Defaults to True.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 loss: dict,
                 norm_target: bool = True,
                 norm_eps: float = 1e-6,
                 unbiased_var: bool = True,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_module = MODELS.build(loss)
        self.norm_target = norm_target
        self.norm_eps = norm_eps
        self.unbiased_var = unbiased_var

    def loss(self, pred: torch.Tensor, target: torch.Tensor, num_views: int = 1) -> torch.Tensor:
        """Loss of ``pred`` against ``target``, both ``(B, n, C)``."""
        if self.norm_target:
            target = normalize_per_token(target, self.norm_eps, self.unbiased_var)
        pred = pred.float()
        target = target.float()
        if num_views > 1:
            B, n, C = target.shape
            pred = pred.reshape(B * num_views, n // num_views, C)
            target = target.reshape(B * num_views, n // num_views, C)
        return self.loss_module(pred, target)
