"""The ViTDet backbone: a plain ViT with windowed and global attention blocks.

`Exploring Plain Vision Transformer Backbones for Object Detection
<https://arxiv.org/abs/2203.16527>`_ (Li et al., ECCV 2022); reference implementation:
detectron2 ``modeling/backbone/vit.py`` with ``projects/ViTDet`` configs.

Parameter names are mmpretrain ``VisionTransformer`` names (``patch_embed.projection``,
``pos_embed``, ``layers.N.ln1`` / ``attn.qkv`` / ``attn.proj`` / ``ln2`` / ``ffn.layers.*``)
plus the relative position tables ``layers.N.attn.rel_pos_h`` / ``rel_pos_w``, so converted
sdae-mm checkpoints (``--to mmdet``) load without renaming.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmcv.cnn.bricks.transformer import PatchEmbed
from mmdet.registry import MODELS
from mmengine.logging import print_log
from mmengine.model import BaseModule, ModuleList
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones.vision_transformer import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed, to_2tuple

from ...engine.optimizers.layer_decay_constructor import vit_layer_id
from .attention import ViTDetLayer
from .checkpoint import load_converted_backbone

__all__ = ['ViTDet', 'init_vit_weights', 'parse_vit_arch']


def parse_vit_arch(arch: Union[str, dict]) -> dict:
    """mmpretrain ``VisionTransformer`` architecture: a name of its ``arch_zoo`` or a dict
    with ``embed_dims``, ``num_layers``, ``num_heads`` and ``feedforward_channels``."""
    if isinstance(arch, str):
        if arch.lower() not in VisionTransformer.arch_zoo:
            raise ValueError(f'arch {arch!r} is not one of '
                             f'{sorted(VisionTransformer.arch_zoo)}')
        return dict(VisionTransformer.arch_zoo[arch.lower()])
    needed = {'embed_dims', 'num_layers', 'num_heads', 'feedforward_channels'}
    if not isinstance(arch, dict) or not needed <= set(arch):
        raise ValueError(f'arch must be a name or a dict with keys {sorted(needed)}, '
                         f'got {arch!r}')
    return dict(arch)


def init_vit_weights(module: nn.Module) -> None:
    """timm / MAE / detectron2 ViT initialisation: linear layers truncated normal (std
    0.02) with zero bias, LayerNorms weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            if m.weight is not None:
                nn.init.constant_(m.weight, 1.0)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)


@MODELS.register_module()
class ViTDet(BaseModule):
    """Plain ViT backbone of ViTDet (single-scale output at stride ``patch_size``).

    The absolute position embedding is kept at the grid of pretraining
    (``pretrain_img_size / patch_size``, without the class-token slot since no class token
    is used) and interpolated (bicubic) to the actual feature map at every forward, as in
    ViTDet; ``init_weights`` loads a converted checkpoint, resizing its ``pos_embed`` to
    that grid when pretraining used another size.

    Args:
        arch (str | dict): mmpretrain ViT architecture ('base', 'large', ... or a dict).
            Defaults to 'base'.
        img_size (int): Input size the relative position tables of global blocks are
            sized for (1024 in ViTDet). Defaults to 1024.
        patch_size (int): Patch size. Defaults to 16.
        in_channels (int): Input channels. Defaults to 3.
        pretrain_img_size (int): Image size of pretraining; sets the ``pos_embed`` grid.
            Defaults to 224.
        window_size (int): Window side of windowed blocks. Defaults to 14.
        global_attn_indexes (Sequence[int]): 0-based blocks with global attention; the
            others use windows. Defaults to (2, 5, 8, 11).
        use_rel_pos (bool): Decomposed relative position bias. Defaults to True.
        rel_pos_zero_init (bool): Zero-initialise the relative tables. Defaults to True.
        drop_rate (float): Dropout after projections. Defaults to 0.
        attn_drop_rate (float): Attention dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth, linearly increasing over blocks.
            Defaults to 0.1.
        qkv_bias (bool): Bias of the qkv projections. Defaults to True.
        norm_cfg (dict): Norm of the blocks. Defaults to ``dict(type='LN', eps=1e-6)``.
        act_cfg (dict): MLP activation. Defaults to ``dict(type='GELU')``.
        checkpoint (str, optional): Converted backbone checkpoint loaded by
            ``init_weights``; None keeps the random initialisation. Defaults to None.
        init_cfg (dict, optional): Not supported (use ``checkpoint``). Defaults to None.
    """

    num_extra_tokens = 0  # no class token at run time

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: int = 1024,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 pretrain_img_size: int = 224,
                 window_size: int = 14,
                 global_attn_indexes: Sequence[int] = (2, 5, 8, 11),
                 use_rel_pos: bool = True,
                 rel_pos_zero_init: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 qkv_bias: bool = True,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 act_cfg: dict = dict(type='GELU'),
                 checkpoint: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is not None:
            raise ValueError('ViTDet loads weights through `checkpoint=` (a converted '
                             f'checkpoint), not init_cfg; got init_cfg={init_cfg!r}')
        super().__init__()
        self.arch_settings = parse_vit_arch(arch)
        self.embed_dims = self.arch_settings['embed_dims']
        self.num_layers = self.arch_settings['num_layers']
        self.patch_size = int(patch_size)
        img_size = to_2tuple(img_size)
        pretrain_img_size = to_2tuple(pretrain_img_size)
        for name, size in (('img_size', img_size), ('pretrain_img_size', pretrain_img_size)):
            if size[0] % self.patch_size or size[1] % self.patch_size:
                raise ValueError(f'{name} {size} must be a multiple of patch_size '
                                 f'{self.patch_size}')
        global_attn_indexes = [int(i) for i in global_attn_indexes]
        for i in global_attn_indexes:
            if not 0 <= i < self.num_layers:
                raise ValueError(f'global_attn_indexes holds {i}, outside the '
                                 f'{self.num_layers} blocks')
        self.global_attn_indexes = tuple(global_attn_indexes)
        self.window_size = int(window_size)
        self.checkpoint = checkpoint
        self.init_report = None

        self.patch_embed = PatchEmbed(
            in_channels=in_channels,
            embed_dims=self.embed_dims,
            conv_type='Conv2d',
            kernel_size=self.patch_size,
            stride=self.patch_size,
            input_size=img_size,
            bias=True)
        self.feat_size = (img_size[0] // self.patch_size, img_size[1] // self.patch_size)
        self.pos_grid = (pretrain_img_size[0] // self.patch_size,
                         pretrain_img_size[1] // self.patch_size)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.pos_grid[0] * self.pos_grid[1], self.embed_dims))

        dpr = np.linspace(0, drop_path_rate, self.num_layers)
        self.layers = ModuleList()
        for i in range(self.num_layers):
            self.layers.append(
                ViTDetLayer(
                    embed_dims=self.embed_dims,
                    num_heads=self.arch_settings['num_heads'],
                    feedforward_channels=self.arch_settings['feedforward_channels'],
                    window_size=0 if i in self.global_attn_indexes else self.window_size,
                    use_rel_pos=use_rel_pos,
                    rel_pos_zero_init=rel_pos_zero_init,
                    input_size=self.feat_size,
                    drop_rate=drop_rate,
                    attn_drop_rate=attn_drop_rate,
                    drop_path_rate=float(dpr[i]),
                    qkv_bias=qkv_bias,
                    act_cfg=act_cfg,
                    norm_cfg=norm_cfg))

    def init_weights(self) -> None:
        """Random ViT initialisation, then the converted checkpoint if one is given."""
        super().init_weights()
        init_vit_weights(self)
        trunc_normal_(self.pos_embed, std=0.02)
        if self.checkpoint is None:
            print_log('ViTDet: no checkpoint given, every weight is randomly initialised',
                      logger='current')
            return
        self.init_report = load_converted_backbone(
            self,
            self.checkpoint,
            ignored_keys=('cls_token', r'ln1\.weight', r'ln1\.bias'),
            new_keys=(r'layers\.\d+\.attn\.rel_pos_[hw]', ),
            pos_grid=self.pos_grid,
            num_extra_tokens=self.num_extra_tokens)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        """(B, 3, H, W) images to a 1-tuple of (B, C, H / p, W / p) features."""
        B = x.shape[0]
        x, hw = self.patch_embed(x)
        x = x + resize_pos_embed(self.pos_embed, self.pos_grid, hw, mode='bicubic',
                                 num_extra_tokens=0)
        x = x.view(B, hw[0], hw[1], self.embed_dims)
        for layer in self.layers:
            x = layer(x)
        return (x.permute(0, 3, 1, 2).contiguous(), )

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer-wise depth of a parameter (mmpretrain convention), by the layer-decay
        constructor's rule (:func:`vit_layer_id`); returns (depth, num_layers + 2)."""
        return vit_layer_id(param_name, prefix, self.num_layers), self.num_layers + 2
