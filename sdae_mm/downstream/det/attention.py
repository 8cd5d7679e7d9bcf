"""Windowed attention with decomposed relative positions, as in ViTDet.

`Exploring Plain Vision Transformer Backbones for Object Detection
<https://arxiv.org/abs/2203.16527>`_ (Li et al., ECCV 2022) fine-tunes a plain ViT with
non-overlapping window attention in most blocks and global attention in a few, both with a
relative position bias decomposed into a height and a width term (from MViTv2). Reference:
detectron2 ``projects/ViTDet`` / ``modeling/backbone/vit.py``.

Tokens stay in a (B, H, W, C) layout inside these blocks. The relative position bias is
passed to :func:`torch.nn.functional.scaled_dot_product_attention` as an additive mask,
which computes ``softmax(q k^T / sqrt(d) + bias) v`` exactly like the explicit product.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.drop import DropPath
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer

__all__ = [
    'window_partition', 'window_unpartition', 'get_rel_pos', 'decomposed_rel_pos_bias',
    'RelPosAttention', 'ViTDetLayer'
]


def window_partition(x: torch.Tensor, window_size: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Cut a (B, H, W, C) map into (B * nW, ws, ws, C) windows, zero-padding H and W up to
    multiples of the window size (ViTDet pads and does not mask the padding).

    Returns:
        tuple: The windows and the padded size (Hp, Wp).
    """
    B, H, W, C = x.shape
    pad_h, pad_w = (-H) % window_size, (-W) % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // window_size, window_size, Wp // window_size, window_size, C)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, C)
    return windows, (Hp, Wp)


def window_unpartition(windows: torch.Tensor, window_size: int, padded_hw: Tuple[int, int],
                       hw: Tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, ws, ws, C) back to (B, H, W, C)."""
    Hp, Wp = padded_hw
    H, W = hw
    nh, nw = Hp // window_size, Wp // window_size
    B = windows.shape[0] // (nh * nw)
    x = windows.view(B, nh, nw, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, -1)
    if Hp != H or Wp != W:
        x = x[:, :H, :W, :]
    return x.contiguous()


def get_rel_pos(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Relative position embeddings for every (query, key) pair along one axis.

    Args:
        q_size (int): Number of query positions along the axis.
        k_size (int): Number of key positions along the axis.
        rel_pos (torch.Tensor): (L, C) table; linearly resized to ``2 * max(q, k) - 1``
            entries when it has another length (ViTDet does the same at run time).

    Returns:
        torch.Tensor: (q_size, k_size, C).
    """
    num = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != num:
        rel_pos = F.interpolate(rel_pos.t().unsqueeze(0).float(), size=num,
                                mode='linear').squeeze(0).t().to(rel_pos.dtype)
    # scale coordinates so that queries and keys of different lengths align
    q_scale, k_scale = max(k_size / q_size, 1.0), max(q_size / k_size, 1.0)
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * q_scale
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * k_scale
    index = (q_coords - k_coords) + (k_size - 1) * k_scale
    return rel_pos[index.long()]


def decomposed_rel_pos_bias(q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor,
                            q_hw: Tuple[int, int], k_hw: Tuple[int, int]) -> torch.Tensor:
    """Additive attention bias ``B[q, k] = <q, R_h[qh - kh]> + <q, R_w[qw - kw]>``.

    The bias uses the unscaled queries, as in MViTv2/ViTDet.

    Args:
        q (torch.Tensor): (B, heads, Hq * Wq, C) queries.
        rel_pos_h, rel_pos_w (torch.Tensor): (L, C) relative position tables.
        q_hw, k_hw (tuple): Query and key grid sizes.

    Returns:
        torch.Tensor: (B, heads, Hq * Wq, Hk * Wk) bias.
    """
    (qh, qw), (kh, kw) = q_hw, k_hw
    Rh = get_rel_pos(qh, kh, rel_pos_h).to(q.dtype)
    Rw = get_rel_pos(qw, kw, rel_pos_w).to(q.dtype)
    B, nh, _, C = q.shape
    r_q = q.reshape(B, nh, qh, qw, C)
    rel_h = torch.einsum('bnhwc,hkc->bnhwk', r_q, Rh)  # (B, nh, qh, qw, kh)
    rel_w = torch.einsum('bnhwc,wkc->bnhwk', r_q, Rw)  # (B, nh, qh, qw, kw)
    bias = rel_h[..., :, None] + rel_w[..., None, :]  # (B, nh, qh, qw, kh, kw)
    return bias.reshape(B, nh, qh * qw, kh * kw)


class RelPosAttention(BaseModule):
    """Multi-head self-attention on a (B, H, W, C) map with optional decomposed relative
    position bias. Parameter names follow mmpretrain's ``MultiheadAttention`` (``qkv``,
    ``proj``) plus ``rel_pos_h`` / ``rel_pos_w``.

    Args:
        embed_dims (int): Channels.
        num_heads (int): Attention heads.
        qkv_bias (bool): Bias of the qkv projection. Defaults to True.
        use_rel_pos (bool): Add the decomposed relative position bias. Defaults to False.
        rel_pos_zero_init (bool): Start the tables at zero (ViTDet's default) instead of a
            truncated normal (std 0.02). Defaults to True.
        input_size (tuple[int, int], optional): Grid the tables are sized for (the window
            for windowed blocks, the full feature map for global ones). Required with
            ``use_rel_pos``.
        attn_drop (float): Dropout on attention weights. Defaults to 0.
        proj_drop (float): Dropout after the output projection. Defaults to 0.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 use_rel_pos: bool = False,
                 rel_pos_zero_init: bool = True,
                 input_size: Optional[Sequence[int]] = None,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                             f'({num_heads})')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.attn_drop = attn_drop
        self.proj_drop = nn.Dropout(proj_drop)
        self.use_rel_pos = use_rel_pos
        self.rel_pos_zero_init = rel_pos_zero_init
        if use_rel_pos:
            if input_size is None or len(input_size) != 2:
                raise ValueError(f'input_size (H, W) is required with use_rel_pos, got '
                                 f'{input_size!r}')
            self.input_size = tuple(int(s) for s in input_size)
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * self.input_size[0] - 1,
                                                      self.head_dims))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * self.input_size[1] - 1,
                                                      self.head_dims))

    def init_weights(self) -> None:
        super().init_weights()
        if self.use_rel_pos and not self.rel_pos_zero_init:
            trunc_normal_(self.rel_pos_h, std=0.02)
            trunc_normal_(self.rel_pos_w, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        qkv = self.qkv(x).reshape(B, H * W, 3, self.num_heads, self.head_dims)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, C')
        bias = None
        if self.use_rel_pos:
            bias = decomposed_rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, (H, W), (H, W))
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.attn_drop if self.training else 0.)
        x = x.transpose(1, 2).reshape(B, H, W, C)
        return self.proj_drop(self.proj(x))


class ViTDetLayer(TransformerEncoderLayer):
    """A ViT block with windowed or global attention, on (B, H, W, C) maps.

    Built as mmpretrain's ``TransformerEncoderLayer`` (so ``ln1``, ``attn.qkv``,
    ``attn.proj``, ``ln2``, ``ffn.layers.*`` keep mmpretrain's names) with the attention
    replaced by :class:`RelPosAttention`. Stochastic depth is applied per image after the
    windows are merged back (applying it inside the attention would drop single windows).

    Args:
        embed_dims (int): Channels.
        num_heads (int): Attention heads.
        feedforward_channels (int): Hidden channels of the MLP.
        window_size (int): Window side; 0 means global attention. Defaults to 0.
        use_rel_pos (bool): Relative position bias in attention. Defaults to False.
        rel_pos_zero_init (bool): Zero-initialise the relative tables. Defaults to True.
        input_size (tuple[int, int], optional): Feature map size of global blocks (the
            window is used for windowed ones).
        drop_rate (float): Dropout after projections. Defaults to 0.
        attn_drop_rate (float): Dropout on attention weights. Defaults to 0.
        drop_path_rate (float): Stochastic depth. Defaults to 0.
        qkv_bias (bool): Bias of the qkv projection. Defaults to True.
        act_cfg (dict): MLP activation. Defaults to GELU.
        norm_cfg (dict): Norm layers. Defaults to ``dict(type='LN', eps=1e-6)``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int,
                 window_size: int = 0,
                 use_rel_pos: bool = False,
                 rel_pos_zero_init: bool = True,
                 input_size: Optional[Sequence[int]] = None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 qkv_bias: bool = True,
                 act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            embed_dims=embed_dims,
            num_heads=num_heads,
            feedforward_channels=feedforward_channels,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
            qkv_bias=qkv_bias,
            act_cfg=act_cfg,
            norm_cfg=norm_cfg,
            init_cfg=init_cfg)
        if window_size < 0:
            raise ValueError(f'window_size must be >= 0 (0 = global), got {window_size}')
        self.window_size = int(window_size)
        attn_size = (window_size, window_size) if window_size > 0 else input_size
        self.attn = RelPosAttention(
            embed_dims=embed_dims,
            num_heads=num_heads,
            qkv_bias=qkv_bias,
            use_rel_pos=use_rel_pos,
            rel_pos_zero_init=rel_pos_zero_init,
            input_size=attn_size,
            attn_drop=attn_drop_rate,
            proj_drop=drop_rate)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f'ViTDetLayer expects (B, H, W, C) tokens, got {tuple(x.shape)}')
        shortcut = x
        x = self.ln1(x)
        if self.window_size > 0:
            H, W = x.shape[1:3]
            x, padded_hw = window_partition(x, self.window_size)
            x = self.attn(x)
            x = window_unpartition(x, self.window_size, padded_hw, (H, W))
        else:
            x = self.attn(x)
        x = shortcut + self.drop_path(x)
        return self.ffn(self.ln2(x), identity=x)
