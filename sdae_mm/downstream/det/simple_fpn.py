"""SimpleFPN: ViTDet's simple feature pyramid built from one single-scale map.

`Exploring Plain Vision Transformer Backbones for Object Detection
<https://arxiv.org/abs/2203.16527>`_, Sec. 3; reference: detectron2
``SimpleFeaturePyramid`` (``modeling/backbone/vit.py``). The last backbone map (stride s)
is turned into maps at strides s / f for every scale factor f by deconvolutions (f > 1,
with a norm and GELU between two of them for f = 4) or max pooling (f < 1); each then gets
a 1x1 and a 3x3 convolution, both normalised (LayerNorm in ViTDet) and without bias; a
stride-2 subsampling of the coarsest output (detectron2's ``LastLevelMaxPool``) adds levels.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from mmengine.model.weight_init import caffe2_xavier_init

__all__ = ['SimpleFPN']

#: Output channels of each scale's first stage relative to the input (detectron2).
_STAGE_DIVISOR = {4.0: 4, 2.0: 2, 1.0: 1, 0.5: 1, 0.25: 1}


@MODELS.register_module()
class SimpleFPN(BaseModule):
    """Simple feature pyramid for plain backbones.

    Args:
        in_channels (int): Channels of the backbone map (768 for ViT-B).
        out_channels (int): Channels of every output level. Defaults to 256.
        scale_factors (Sequence[float]): Up/down-sampling of each level relative to the
            backbone map, from fine to coarse; supported: 4, 2, 1, 0.5 (ViTDet) and 0.25.
            Defaults to (4.0, 2.0, 1.0, 0.5): strides 4..32 from a stride-16 ViT.
        num_outs (int): Output levels; levels beyond ``len(scale_factors)`` subsample the
            last one with stride 2. Defaults to 5.
        norm_cfg (dict): Norm of the first-stage deconvolutions and of every convolution.
            Defaults to ``dict(type='LN2d', eps=1e-6)``.
        act_cfg (dict): Activation between the two deconvolutions of scale 4.
            Defaults to ``dict(type='GELU')``.
        init_cfg (dict, optional): Initialisation config. Defaults to None (convolutions get
            detectron2's ``c2_xavier_fill``).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int = 256,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 num_outs: int = 5,
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        scale_factors = [float(s) for s in scale_factors]
        for s in scale_factors:
            if s not in _STAGE_DIVISOR:
                raise ValueError(f'scale factor {s} is not supported; choose from '
                                 f'{sorted(_STAGE_DIVISOR)}')
        if num_outs < len(scale_factors):
            raise ValueError(f'num_outs ({num_outs}) must be >= the number of scale '
                             f'factors ({len(scale_factors)})')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.scale_factors = tuple(scale_factors)
        self.num_outs = num_outs

        self.stages = nn.ModuleList()
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for scale in scale_factors:
            dim = in_channels // _STAGE_DIVISOR[scale]
            self.stages.append(self._make_stage(scale, in_channels, norm_cfg, act_cfg))
            self.lateral_convs.append(
                ConvModule(dim, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None))
            self.fpn_convs.append(
                ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg,
                           act_cfg=None))

    @staticmethod
    def _make_stage(scale: float, dim: int, norm_cfg: dict, act_cfg: dict) -> nn.Module:
        if scale == 4.0:
            return nn.Sequential(
                nn.ConvTranspose2d(dim, dim // 2, kernel_size=2, stride=2),
                build_norm_layer(norm_cfg, dim // 2)[1],
                build_activation_layer(act_cfg),
                nn.ConvTranspose2d(dim // 2, dim // 4, kernel_size=2, stride=2))
        if scale == 2.0:
            return nn.ConvTranspose2d(dim, dim // 2, kernel_size=2, stride=2)
        if scale == 1.0:
            return nn.Identity()
        if scale == 0.5:
            return nn.MaxPool2d(kernel_size=2, stride=2)
        return nn.MaxPool2d(kernel_size=4, stride=4)  # 0.25

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            for conv in list(self.lateral_convs) + list(self.fpn_convs):
                caffe2_xavier_init(conv.conv)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """Backbone outputs (the last map is used) to ``num_outs`` levels, fine first."""
        x = inputs[-1]
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'SimpleFPN expects (B, {self.in_channels}, H, W), got '
                             f'{tuple(x.shape)}')
        outs: List[torch.Tensor] = []
        for stage, lateral, fpn in zip(self.stages, self.lateral_convs, self.fpn_convs):
            outs.append(fpn(lateral(stage(x))))
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
