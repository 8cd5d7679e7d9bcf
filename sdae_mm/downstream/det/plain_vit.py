"""Plain ViT with a multi-scale adapter, the backbone of the common MIM detection benchmark.

Mask R-CNN + FPN on a plain ViT as used by BEiT, iBOT, CAE (and SdAE, which follows CAE):
features are taken after four blocks (4/6/8/12 of ViT-B, i.e. 0-based (3, 5, 7, 11)),
without a final norm, and brought to strides 4/8/16/32 for the FPN. For patch 16 the four
maps are upsampled x4 (deconv, norm, GELU, deconv), upsampled x2 (deconv), kept, and
max-pooled x2; for patch 8 they are upsampled x2, kept, and max-pooled x2 and x4.
References: bytedance/ibot and lxtGH/CAE ``evaluation/object_detection``.

Parameter names are mmpretrain ``VisionTransformer`` names plus the adapters ``fpn1`` ..
``fpn4``, so converted sdae-mm checkpoints (``--to mmdet``) load without renaming.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmdet.registry import MODELS
from mmengine.logging import print_log
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones.vision_transformer import VisionTransformer

from .checkpoint import load_converted_backbone
from .vitdet import init_vit_weights, parse_vit_arch

__all__ = ['PlainViT']


@MODELS.register_module()
class PlainViT(VisionTransformer):
    """mmpretrain ``VisionTransformer`` returning four maps at strides 4, 8, 16 and 32.

    The class token is kept at run time (as in iBOT/CAE); the position embedding is kept at
    the ``img_size / patch_size`` grid and interpolated (bicubic) to the input's grid at
    every forward. ``init_weights`` loads a converted checkpoint, resizing its
    ``pos_embed`` to that grid when needed.

    Args:
        arch (str | dict): mmpretrain ViT architecture. Defaults to 'base'.
        img_size (int): Size that sets the ``pos_embed`` grid; the pretraining size keeps
            the checkpoint's embedding as it is. Defaults to 224.
        patch_size (int): 16 or 8 (the adapters exist for these two). Defaults to 16.
        out_indices (Sequence[int]): Four 0-based blocks whose outputs feed the adapters.
            Defaults to (3, 5, 7, 11).
        drop_path_rate (float): Stochastic depth. Defaults to 0.1.
        qkv_bias (bool): Bias of the qkv projections. Defaults to True.
        norm_cfg (dict): Norm of the blocks. Defaults to ``dict(type='LN', eps=1e-6)``.
        adapter_norm_cfg (dict): Norm between the two deconvolutions of the x4 adapter
            (patch 16). Defaults to ``dict(type='SyncBN')`` (iBOT/CAE); use BN on one
            device.
        checkpoint (str, optional): Converted backbone checkpoint loaded by
            ``init_weights``; None keeps the random initialisation. Defaults to None.
        **kwargs: Other arguments of mmpretrain's ``VisionTransformer`` (``drop_rate``,
            ``layer_cfgs``, ``frozen_stages``, ...).
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: int = 224,
                 patch_size: int = 16,
                 out_indices: Sequence[int] = (3, 5, 7, 11),
                 drop_path_rate: float = 0.1,
                 qkv_bias: bool = True,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 adapter_norm_cfg: dict = dict(type='SyncBN'),
                 checkpoint: Optional[str] = None,
                 **kwargs) -> None:
        for key in ('final_norm', 'out_type', 'with_cls_token', 'init_cfg'):
            if key in kwargs:
                raise ValueError(f'PlainViT fixes {key}; got {key}={kwargs[key]!r}')
        num_layers = parse_vit_arch(arch)['num_layers']
        out_indices = [int(i) for i in out_indices]
        if len(out_indices) != 4 or sorted(out_indices) != out_indices or not all(
                0 <= i < num_layers for i in out_indices):
            raise ValueError(f'out_indices must be 4 increasing block indices below '
                             f'{num_layers}, got {out_indices}')
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=patch_size,
            out_indices=out_indices,
            drop_path_rate=drop_path_rate,
            qkv_bias=qkv_bias,
            norm_cfg=norm_cfg,
            final_norm=False,
            out_type='featmap',
            with_cls_token=True,
            **kwargs)
        self.checkpoint = checkpoint
        self.init_report = None
        C = self.embed_dims
        if patch_size == 16:
            self.fpn1 = nn.Sequential(
                nn.ConvTranspose2d(C, C, kernel_size=2, stride=2),
                build_norm_layer(adapter_norm_cfg, C)[1],
                nn.GELU(),
                nn.ConvTranspose2d(C, C, kernel_size=2, stride=2))
            self.fpn2 = nn.ConvTranspose2d(C, C, kernel_size=2, stride=2)
            self.fpn3 = nn.Identity()
            self.fpn4 = nn.MaxPool2d(kernel_size=2, stride=2)
        elif patch_size == 8:
            self.fpn1 = nn.ConvTranspose2d(C, C, kernel_size=2, stride=2)
            self.fpn2 = nn.Identity()
            self.fpn3 = nn.MaxPool2d(kernel_size=2, stride=2)
            self.fpn4 = nn.MaxPool2d(kernel_size=4, stride=4)
        else:
            raise ValueError(f'PlainViT has adapters for patch_size 16 and 8, got '
                             f'{patch_size}')

    def init_weights(self) -> None:
        """Random ViT initialisation, then the converted checkpoint if one is given."""
        super().init_weights()
        init_vit_weights(self)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        if self.checkpoint is None:
            print_log('PlainViT: no checkpoint given, every weight is randomly initialised',
                      logger='current')
            return
        self.init_report = load_converted_backbone(
            self,
            self.checkpoint,
            ignored_keys=(r'ln1\.weight', r'ln1\.bias'),
            new_keys=(r'fpn\d\..+', ),
            pos_grid=self.patch_resolution,
            num_extra_tokens=self.num_extra_tokens)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """(B, 3, H, W) images to four maps at strides 4, 8, 16 and 32."""
        feats = super().forward(x)
        adapters = (self.fpn1, self.fpn2, self.fpn3, self.fpn4)
        return tuple(op(f) for op, f in zip(adapters, feats))
