"""The MAE-style decoder shared by the MIM students."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.registry import MODELS

from ..utils import gather_tokens, sincos_pos_embed


@MODELS.register_module()
class MIMDecoder(BaseModule):
    """Lightweight transformer decoder over all patch positions (`MAE
    <https://arxiv.org/abs/2111.06377>`_).

    The encoded visible tokens are projected to the decoder width, mask tokens fill the
    masked positions, a fixed sine-cosine position embedding is added, and the blocks,
    a norm and a linear prediction layer follow. SdAE and dBOT predict teacher features
    (``out_channels`` = teacher width); MAE and RC-MAE predict pixels
    (``out_channels`` = ``patch_size ** 2 * 3``).

    Args:
        num_patches (int): Number of patches ``L`` (a square grid).
        in_channels (int): Encoder width.
        out_channels (int): Width of the prediction per patch.
        embed_dims (int): Decoder width. Defaults to 512.
        num_layers (int): Decoder depth. Defaults to 8.
        num_heads (int): Decoder heads. Defaults to 16.
        mlp_ratio (float): FFN hidden ratio. Defaults to 4.
        drop_path_rate (float): Stochastic depth of the decoder blocks, rising linearly
            from 0 at the first block to ``drop_path_rate`` at the last (official dBOT:
            ``torch.linspace(0, sdpr, decoder_depth)``, the student's rate; MAE, SdAE and
            RC-MAE decoders have none). Defaults to 0.
        norm_cfg (dict): Norm config. Defaults to LN with eps 1e-6.
        init_cfg (dict, optional): Initialisation config. Defaults to None (MAE's init).
    """

    def __init__(self,
                 num_patches: int,
                 in_channels: int,
                 out_channels: int,
                 embed_dims: int = 512,
                 num_layers: int = 8,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        grid = int(round(num_patches**.5))
        if grid * grid != num_patches:
            raise ValueError(f'num_patches must be a square number, got {num_patches}')
        self.num_patches = num_patches
        self.decoder_embed = nn.Linear(in_channels, embed_dims)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.decoder_pos_embed = nn.Parameter(
            torch.zeros(1, num_patches + 1, embed_dims), requires_grad=False)
        # float32 linspace on the CPU, as the official code (and so also on 'meta')
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, num_layers, device='cpu')]
        self.drop_path_rate = drop_path_rate
        self.decoder_blocks = nn.ModuleList([
            TransformerEncoderLayer(
                embed_dims, num_heads, int(mlp_ratio * embed_dims), qkv_bias=True,
                drop_path_rate=dpr[i], norm_cfg=norm_cfg) for i in range(num_layers)
        ])
        self.decoder_norm = build_norm_layer(norm_cfg, embed_dims)[1]
        self.decoder_pred = nn.Linear(embed_dims, out_channels)

    def init_weights(self) -> None:
        """MAE's initialisation: xavier-uniform linears with zero bias, unit norms,
        a sine-cosine position embedding and a N(0, 0.02) mask token."""
        if self.init_cfg is not None:
            super().init_weights()
            return
        grid = int(round(self.num_patches**.5))
        self.decoder_pos_embed.data.copy_(
            sincos_pos_embed(grid, self.decoder_pos_embed.shape[-1]))
        nn.init.normal_(self.mask_token, std=.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self._is_init = True

    def forward(self,
                x: torch.Tensor,
                ids_restore: torch.Tensor,
                keep_cls: bool = False,
                query_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Predict every patch, or only the patches of ``query_ids``.

        Args:
            x (Tensor): Encoded tokens ``(B, 1 + n, C)``, cls first, visible patches in
                the order of ``ids_shuffle``.
            ids_restore (Tensor): ``argsort(ids_shuffle)``, ``(B, L)``.
            keep_cls (bool): Also return the prediction at the cls position (dBOT's loss
                counts it). Defaults to False.
            query_ids (Tensor, optional): Patch indices ``(B, K)`` whose predictions are
                wanted (SdAE's teacher tokens). The last block then computes its queries,
                attention output and FFN, and the norm and prediction layer, only at these
                positions (keys and values still come from every token): the same values
                as ``gather_tokens(forward(x, ids_restore), query_ids)`` with about a
                quarter less work in the last block. Not with ``keep_cls``.

        Returns:
            Tensor: Predictions ``(B, L, out_channels)`` in patch order (cls dropped),
            ``(B, 1 + L, out_channels)`` with the cls position first when ``keep_cls``,
            or ``(B, K, out_channels)`` in the order of ``query_ids``.
        """
        x = self.decoder_embed(x)
        B, n1, C = x.shape
        L = ids_restore.shape[1]
        if L != self.num_patches:
            raise ValueError(f'ids_restore has {L} patches; the decoder was built for '
                             f'{self.num_patches}')
        if query_ids is not None and keep_cls:
            raise ValueError('query_ids and keep_cls=True cannot be combined')
        patches = torch.cat((x[:, 1:], self.mask_token.expand(B, L + 1 - n1, C)), dim=1)
        patches = gather_tokens(patches, ids_restore)
        x = torch.cat((x[:, :1], patches), dim=1) + self.decoder_pos_embed
        if query_ids is None:
            for blk in self.decoder_blocks:
                x = blk(x)
        else:
            for blk in self.decoder_blocks[:-1]:
                x = blk(x)
            x = block_at_rows(self.decoder_blocks[-1], x, query_ids + 1)
        x = self.decoder_pred(self.decoder_norm(x))
        return x[:, 1:] if query_ids is None and not keep_cls else x


def block_at_rows(block: TransformerEncoderLayer, x: torch.Tensor,
                  rows: torch.Tensor) -> torch.Tensor:
    """``gather_tokens(block(x), rows)``, computed at those rows only.

    Every token still provides keys and values; queries, the attention output, the
    residuals and the FFN are evaluated only at ``rows``. Per-token operations (layer
    scale, dropout, drop path) apply unchanged; a value shortcut is not supported.

    Args:
        block (TransformerEncoderLayer): An mmpretrain pre-norm ViT block.
        x (Tensor): Its input ``(B, N, C)``.
        rows (Tensor): Positions in ``x`` to evaluate, ``(B, K)``.

    Returns:
        Tensor: ``(B, K, C)``.
    """
    attn = block.attn
    if attn.v_shortcut:
        raise ValueError('block_at_rows does not support v_shortcut attention')
    B, N, _ = x.shape
    K, E, H = rows.shape[1], attn.embed_dims, attn.num_heads
    h = block.ln1(x)
    w, b = attn.qkv.weight, attn.qkv.bias
    q = F.linear(gather_tokens(h, rows), w[:E], None if b is None else b[:E])
    kv = F.linear(h, w[E:], None if b is None else b[E:])
    q = q.reshape(B, K, H, attn.head_dims).transpose(1, 2)
    k, v = kv.reshape(B, N, 2, H, attn.head_dims).permute(2, 0, 3, 1, 4).unbind(0)
    out = attn.scaled_dot_product_attention(
        q, k, v, dropout_p=attn.attn_drop if attn.training else 0.)
    out = attn.proj(out.transpose(1, 2).reshape(B, K, E))
    x = gather_tokens(x, rows) + attn.out_drop(attn.gamma1(attn.proj_drop(out)))
    return block.ffn(block.ln2(x), identity=x)
