"""Channel-wise LayerNorm on (N, C, H, W) maps, registered in mmdet's scope as ``LN2d``.

ViTDet normalises the convolutions of its simple feature pyramid and of its RoI heads with a
LayerNorm over channels (detectron2's ``LayerNorm``, eps 1e-6). mmdet 3.3 keeps such a layer
only inside ``projects/ViTDet``, which its wheel does not ship, and mmpretrain's ``LN2d`` lives
in mmpretrain's scope, which mmdet configs do not search. mmcv's ``build_norm_layer`` resolves
``dict(type='LN2d')`` in the current scope, so we register our own here.

Note: mmcv's ``build_norm_layer`` sets ``eps=1e-5`` unless the config gives one; ViTDet
configs must write ``dict(type='LN2d', eps=1e-6)``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS

__all__ = ['LayerNorm2d']


@MODELS.register_module('LN2d')
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel dimension of a (N, C, H, W) tensor.

    Every spatial position is normalised across its C channels with a learnable per-channel
    affine transform, exactly like ``nn.LayerNorm(C)`` applied to the (N, H, W, C) view.

    Args:
        num_channels (int): Number of channels C.
        eps (float): Added to the variance. Defaults to 1e-6 (detectron2 / ViTDet).
        **kwargs: Other arguments of :class:`torch.nn.LayerNorm`.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6, **kwargs) -> None:
        super().__init__(num_channels, eps=eps, **kwargs)
        self.num_channels = self.normalized_shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f'LN2d expects a (N, C, H, W) tensor, got shape {tuple(x.shape)}')
        if x.shape[1] != self.num_channels:
            raise ValueError(f'LN2d was built for {self.num_channels} channels, '
                             f'got a tensor with {x.shape[1]}')
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2).contiguous()
