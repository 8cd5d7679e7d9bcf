"""The ViT encoder of the students and teachers of masked image modeling."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.registry import MODELS

from ..utils import gather_tokens, sincos_pos_embed


@MODELS.register_module()
class MIMVisionTransformer(VisionTransformer):
    """mmpretrain's ViT with the token-subset forwards that MIM students and teachers need.

    Parameter names are those of mmpretrain's :class:`VisionTransformer`, so a state dict of
    this encoder loads into mmpretrain (and, converted, into mmseg/mmdet/timm) unchanged.
    Attention uses ``torch.nn.functional.scaled_dot_product_attention`` (mmpretrain's
    ``MultiheadAttention`` does on torch >= 2.0).

    Four forwards:

    - ``forward(x)``: the plain ViT forward of mmpretrain (features for transfer and kNN).
    - ``forward_masked(x, ids_keep)``: the student encoder over the given visible patches
      (MAE): ``(B, 1 + n, C)`` with the cls token first, after the final norm.
    - ``forward_views(x, ids, num_views)``: the teacher over token subsets; the ``n``
      patches in ``ids`` are split into ``num_views`` consecutive groups, each group with the
      cls token is one sequence (SdAE's multi-fold views; ``num_views=1`` is one view of
      all ``ids``), all views of the batch run as one batched call. ``ids=None`` is the
      whole image. Returns ``(B, n, C)`` patch features (cls dropped), in the order of ``ids``.
    - ``forward_tokens(x, num_layers, final_norm)``: the whole image through the first
      ``num_layers`` blocks, optionally without the final norm: ``(B, 1 + L, C)`` (dBOT).

    Args:
        arch (str | dict): ViT architecture (mmpretrain names, e.g. ``'b'``, ``'l'``,
            ``'deit-s'``, or a dict). Defaults to ``'b'``.
        img_size (int): Input size. Defaults to 224.
        patch_size (int): Patch size. Defaults to 16.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        norm_cfg (dict): Norm layer config. Defaults to LN with eps 1e-6 (as MAE).
        fixed_pos_embed (bool): Use a frozen sine-cosine position embedding (MAE student).
            When False the embedding is a parameter. Defaults to True.
        init_mode (str): ``'mae'``: MAE's initialisation (xavier-uniform linears, sine-cosine
            position embedding, cls token N(0, 0.02), patch projection xavier on its
            flattened weight); ``'timm'``: timm's ViT initialisation (truncated normal 0.02
            for linears, position embedding and cls token), used by the official SdAE
            teacher. Defaults to ``'mae'``.
        **kwargs: Other arguments of mmpretrain's ``VisionTransformer``.
    """

    def __init__(self,
                 arch='b',
                 img_size: int = 224,
                 patch_size: int = 16,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 fixed_pos_embed: bool = True,
                 init_mode: str = 'mae',
                 out_type: str = 'raw',
                 **kwargs) -> None:
        if init_mode not in ('mae', 'timm'):
            raise ValueError(f"init_mode must be 'mae' or 'timm', got {init_mode!r}")
        kwargs.setdefault('with_cls_token', True)
        if not kwargs['with_cls_token']:
            raise ValueError('MIMVisionTransformer needs with_cls_token=True')
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=patch_size,
            drop_path_rate=drop_path_rate,
            norm_cfg=norm_cfg,
            out_type=out_type,
            **kwargs)
        if not self.final_norm:
            raise ValueError('MIMVisionTransformer needs final_norm=True')
        self.fixed_pos_embed = fixed_pos_embed
        self.init_mode = init_mode
        if fixed_pos_embed:
            self.pos_embed.requires_grad = False
        self.num_patches = self.patch_resolution[0] * self.patch_resolution[1]

    # ------------------------------------------------------------------ init
    def init_weights(self) -> None:
        """Initialise as the official code does (see ``init_mode``)."""
        if self.init_cfg is not None and self.init_cfg.get('type') == 'Pretrained':
            super().init_weights()
            return
        self._initialize(reset_patch_bias=True)

    def reinitialize(self) -> None:
        """Re-initialise a trained encoder as MAE's ``initialize_weights()`` does (dBOT's
        stage switch, ``model.module.initialize_weights()``): every Linear and LayerNorm,
        the patch projection's weight, the cls token and the position embedding, but not
        the patch projection's *bias*, which ``initialize_weights`` never touches (it is a
        Conv2d bias, outside ``_init_weights``' Linear/LayerNorm cases) and so keeps its
        trained value."""
        self._initialize(reset_patch_bias=False)

    def _initialize(self, reset_patch_bias: bool) -> None:
        proj = self.patch_embed.projection
        if reset_patch_bias:
            # PyTorch's Conv2d initialisation (weight and bias) of a freshly built model
            proj.reset_parameters()
        elif self.init_mode == 'timm':
            # timm keeps PyTorch's Conv2d weight initialisation: redraw the weight only
            bias = None if proj.bias is None else proj.bias.detach().clone()
            proj.reset_parameters()
            if bias is not None:
                with torch.no_grad():
                    proj.bias.copy_(bias)
        if self.init_mode == 'mae':
            if self.patch_resolution[0] != self.patch_resolution[1]:
                raise ValueError('sine-cosine position embedding needs a square grid, got '
                                 f'{self.patch_resolution}')
            self.pos_embed.data.copy_(
                sincos_pos_embed(self.patch_resolution[0], self.embed_dims))
            w = proj.weight.data
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
            nn.init.normal_(self.cls_token, std=.02)
            linear_init = nn.init.xavier_uniform_
        else:
            trunc_normal_(self.pos_embed, std=.02)
            trunc_normal_(self.cls_token, std=.02)

            def linear_init(weight):
                trunc_normal_(weight, std=.02)

        for m in self.modules():
            if isinstance(m, nn.Linear):
                linear_init(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self._is_init = True

    # --------------------------------------------------------------- forwards
    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens plus their position embedding, ``(B, L, C)``."""
        tokens, grid = self.patch_embed(x)
        if tuple(grid) != tuple(self.patch_resolution):
            raise ValueError(f'input of size {tuple(x.shape[-2:])} gives a {tuple(grid)} '
                             f'patch grid; this encoder was built for {self.patch_resolution}')
        return tokens + self.pos_embed[:, self.num_extra_tokens:]

    def _encode(self,
                tokens: torch.Tensor,
                num_layers: Optional[int] = None,
                final_norm: bool = True) -> torch.Tensor:
        """Prepend the cls token and run the (first ``num_layers``) blocks and the final
        norm."""
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(tokens.shape[0], -1, -1)
        x = torch.cat((cls, tokens), dim=1)
        x = self.pre_norm(self.drop_after_pos(x))
        layers = self.layers if num_layers is None else self.layers[:num_layers]
        for layer in layers:
            x = layer(x)
        return self.ln1(x) if final_norm else x

    def forward_masked(self, x: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """Encode the visible patches ``ids_keep`` (B, n): returns ``(B, 1 + n, C)``."""
        return self._encode(gather_tokens(self._embed(x), ids_keep))

    def forward_tokens(self,
                       x: torch.Tensor,
                       num_layers: Optional[int] = None,
                       final_norm: bool = True) -> torch.Tensor:
        """The whole image through the first ``num_layers`` blocks (all when None), with
        or without the final norm: returns ``(B, 1 + L, C)``, cls first (dBOT's teacher)."""
        if num_layers is not None and not 0 <= num_layers <= len(self.layers):
            raise ValueError(f'num_layers must be in [0, {len(self.layers)}], got {num_layers}')
        return self._encode(self._embed(x), num_layers, final_norm)

    def forward_views(self,
                      x: torch.Tensor,
                      ids: Optional[torch.Tensor] = None,
                      num_views: int = 1) -> torch.Tensor:
        """Encode token subsets as separate sequences: returns ``(B, n, C)``."""
        tokens = self._embed(x)
        if ids is not None:
            tokens = gather_tokens(tokens, ids)
        B, n, C = tokens.shape
        if n % num_views:
            raise ValueError(f'{n} tokens cannot be split into {num_views} equal views')
        out = self._encode(tokens.reshape(B * num_views, n // num_views, C))
        return out[:, 1:].reshape(B, n, C)
