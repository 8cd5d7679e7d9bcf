"""A ViT backbone for mmseg that starts from an sdae-mm pretraining checkpoint."""
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint
from mmseg.models.backbones import MAE
from mmseg.registry import MODELS

#: Parameters a pretrained plain ViT encoder does not have; the backbone creates them.
NEW_PARAM_PATTERNS = (
    r'layers\.\d+\.attn\.relative_position_bias_table',  # relative position bias (zeros)
    r'layers\.\d+\.gamma_[12]',  # layer scale (``init_values``)
)

#: Checkpoint entries this backbone deliberately does not use.
UNUSED_KEY_PATTERNS = (
    r'mask_token',  # MIM mask token, only meaningful during pretraining
    r'layers\.\d+\.attn\.relative_position_index',  # a buffer, rebuilt for our grid
)

#: Final norm of the pretrained encoder: unused when ``final_norm=False`` (MAE/BEiT protocol).
FINAL_NORM_KEYS = ('ln1.weight', 'ln1.bias')


def _summarise(keys: List[str]) -> str:
    """``layers.3.gamma_1, layers.4.gamma_1`` -> ``layers.*.gamma_1 (x2)``."""
    groups: Dict[str, int] = {}
    for key in keys:
        pattern = re.sub(r'(?<=layers\.)\d+(?=\.)', '*', key)
        groups[pattern] = groups.get(pattern, 0) + 1
    return ', '.join(f'{k} (x{n})' if n > 1 else k for k, n in groups.items()) or 'nothing'


@MODELS.register_module()
class SdMIMSegViT(MAE):
    """mmseg's ``MAE`` ViT that initialises itself from a converted sdae-mm checkpoint.

    This is the backbone of the MAE/BEiT semantic segmentation protocol (UperNet on
    ADE20K, `MAE <https://arxiv.org/abs/2111.06377>`_ appendix A.4, `BEiT
    <https://arxiv.org/abs/2106.08254>`_): a plain ViT whose attention gets a relative
    position bias learned from zero on top of the pretrained absolute position embedding,
    and a layer scale (``init_values``, 1.0 = identity at the start). The architecture is
    exactly mmseg's :class:`mmseg.models.backbones.MAE`; only the initialisation differs.

    ``init_weights`` first runs mmseg's own initialisation, then loads the encoder of a
    pretraining run (SdAE, dBOT, RC-MAE or MAE; teacher or student) from
    ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``:

    - the checkpoint is a ``tools/convert_checkpoint.py --to mmseg`` output: ``state_dict``
      keys without prefix, in mmseg ``MAE`` names. ``init_cfg.prefix`` (which mmseg's own
      MAE/BEiT backbones ignore) is honoured here, so a raw pretraining checkpoint also
      works with ``prefix='teacher.'`` or ``prefix='backbone.'``; nothing depends on it;
    - a query/value bias pair (``attn.q_bias``/``attn.v_bias``, BEiT naming) is merged into
      the full ``attn.qkv.bias`` with a zero key bias, which is exact (a key bias adds a
      per-query constant to the logits, which softmax removes);
    - ``pos_embed`` is interpolated (bicubic, cls position kept) to this backbone's patch
      grid, e.g. 14x14 -> 32x32 for 224 -> 512;
    - the pretrained final norm (``ln1``) and a ``mask_token`` are not used and are skipped;
    - every other checkpoint key must match a parameter of this backbone in name and shape,
      and the only parameters left to initialise are the relative position bias tables and
      layer-scale gammas (plus the final norm when ``final_norm=True``); anything else
      raises an error naming the keys.

    What was loaded, skipped and left to initialise is logged and kept in
    :attr:`init_report`.

    Args:
        img_size (int | tuple[int, int]): Input size the backbone is built for; the
            segmentor must feed exactly this size (sliding-window inference with the same
            crop). Defaults to 224.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH,
            prefix=None)`` to load pretrained weights; None for mmseg's random
            initialisation. Defaults to None.
        **kwargs: Every other argument of :class:`mmseg.models.backbones.MAE`
            (``patch_size``, ``embed_dims``, ``num_layers``, ``num_heads``, ``mlp_ratio``,
            ``out_indices``, ``drop_path_rate``, ``norm_cfg``, ``final_norm``,
            ``init_values``, ...).
    """

    def __init__(self, img_size=224, init_cfg: Optional[dict] = None, **kwargs):
        if isinstance(img_size, list):
            img_size = tuple(img_size)
        if init_cfg is not None:
            if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained':
                raise ValueError(
                    'SdMIMSegViT: init_cfg must be None or dict(type="Pretrained", '
                    f'checkpoint=PATH[, prefix=...]), got {init_cfg!r}')
            if 'checkpoint' not in init_cfg:
                raise KeyError(f'SdMIMSegViT: init_cfg has no "checkpoint": {init_cfg!r}')
        if kwargs.get('pretrained') is not None:
            raise ValueError('SdMIMSegViT: use init_cfg=dict(type="Pretrained", '
                             'checkpoint=...) instead of pretrained='
                             f'{kwargs["pretrained"]!r}')
        super().__init__(img_size=img_size, init_cfg=init_cfg, **kwargs)
        self.init_report: Optional[dict] = None

    # ------------------------------------------------------------------ initialisation
    def init_weights(self):
        """mmseg's MAE initialisation, then the pretrained encoder (see class doc)."""
        init_cfg = self.init_cfg
        self.init_cfg = None  # run MAE's from-scratch branch for every parameter
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        if init_cfg is None:
            self.init_report = dict(checkpoint=None, loaded=[], skipped=[],
                                    initialised=sorted(self.state_dict().keys()))
            return
        self.load_pretrained(init_cfg['checkpoint'], init_cfg.get('prefix'))

    def load_pretrained(self, checkpoint: str, prefix: Optional[str] = None) -> dict:
        """Load a converted (or, with ``prefix``, a raw) checkpoint into this backbone.

        Args:
            checkpoint (str): Path or URL of the checkpoint.
            prefix (str, optional): Keep only keys starting with it, and strip it.

        Returns:
            dict: The report also stored in :attr:`init_report`: ``checkpoint``,
            ``loaded``, ``skipped`` and ``initialised`` key lists, and ``pos_embed``
            (source and target grids).
        """
        if not checkpoint:
            raise ValueError(
                'SdMIMSegViT: no pretrained checkpoint given; set '
                'model.backbone.init_cfg.checkpoint=<converted .pth> (tools/'
                'convert_checkpoint.py --to mmseg), or init_cfg=None to train from scratch')
        if '://' not in checkpoint and not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'SdMIMSegViT: checkpoint {checkpoint!r} does not exist (set '
                'model.backbone.init_cfg.checkpoint)')
        ckpt = _load_checkpoint(checkpoint, map_location='cpu', logger='current')
        state_dict = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state_dict, dict) or not state_dict:
            raise ValueError(f'SdMIMSegViT: {checkpoint!r} holds no state dict')
        state_dict = self._select_prefix(dict(state_dict), prefix, checkpoint)
        state_dict, skipped, grids = self._adapt_state_dict(state_dict)
        initialised = self._check_keys(state_dict, checkpoint)
        self.load_state_dict(state_dict, strict=False)

        self.init_report = dict(
            checkpoint=checkpoint, prefix=prefix, loaded=sorted(state_dict),
            skipped=sorted(skipped), initialised=initialised, pos_embed=grids)
        print_log(
            f'SdMIMSegViT: loaded {len(state_dict)} tensors from {checkpoint}'
            + (f' (prefix {prefix!r})' if prefix else '')
            + f'; pos_embed grid {grids[0]} -> {grids[1]}'
            + f'; initialised here: {_summarise(initialised)}'
            + f'; skipped from the checkpoint: {_summarise(sorted(skipped))}',
            logger='current')
        return self.init_report

    @staticmethod
    def _select_prefix(state_dict: dict, prefix: Optional[str], checkpoint: str) -> dict:
        if prefix:
            selected = {k[len(prefix):]: v for k, v in state_dict.items()
                        if k.startswith(prefix)}
            if not selected:
                heads = sorted({k.split('.', 1)[0] + '.' for k in state_dict})
                raise KeyError(f'SdMIMSegViT: no key of {checkpoint!r} starts with prefix '
                               f'{prefix!r}; its top-level prefixes are {heads[:10]}')
            return selected
        if 'patch_embed.projection.weight' not in state_dict and any(
                k.startswith(('backbone.', 'teacher.')) for k in state_dict):
            raise ValueError(
                f'SdMIMSegViT: {checkpoint!r} looks like a pretraining checkpoint (keys '
                'under backbone./teacher.); convert it with tools/convert_checkpoint.py '
                '--to mmseg, or set init_cfg.prefix="teacher." (or "backbone.")')
        return state_dict

    def _adapt_state_dict(self, state_dict: dict) -> Tuple[dict, List[str], tuple]:
        """Merge q/v biases, drop unused keys and interpolate ``pos_embed``."""
        own = self.state_dict()
        skipped = []
        for key in list(state_dict):
            if any(re.fullmatch(p, key) for p in UNUSED_KEY_PATTERNS) or (
                    key in FINAL_NORM_KEYS and not self.final_norm):
                state_dict.pop(key)
                skipped.append(key)
        for key in [k for k in state_dict if k.endswith('.attn.q_bias')]:
            base = key[:-len('q_bias')]
            v_key = base + 'v_bias'
            if v_key not in state_dict:
                raise KeyError(f'SdMIMSegViT: checkpoint has {key} but no {v_key}')
            q_bias, v_bias = state_dict.pop(key), state_dict.pop(v_key)
            if base + 'qkv.bias' in own:
                state_dict[base + 'qkv.bias'] = torch.cat(
                    [q_bias, torch.zeros_like(q_bias), v_bias])
            else:  # a qv-bias (BEiT) attention: keep the BEiT names
                state_dict[key], state_dict[v_key] = q_bias, v_bias
        grids = (None, None)
        if 'pos_embed' in state_dict:
            state_dict['pos_embed'], grids = self._resize_pos_embed(state_dict['pos_embed'])
        return state_dict, skipped, grids

    def _resize_pos_embed(self, pos_embed: torch.Tensor):
        """Bicubic interpolation of the patch positions to this backbone's grid."""
        if pos_embed.dim() != 3 or pos_embed.shape[0] != 1:
            raise ValueError('SdMIMSegViT: checkpoint pos_embed must be (1, 1 + L, C), got '
                             f'{tuple(pos_embed.shape)}')
        num_src = pos_embed.shape[1] - 1  # the cls position comes first
        src = int(round(num_src**0.5))
        if src * src != num_src:
            raise ValueError(
                f'SdMIMSegViT: checkpoint pos_embed has {num_src} patch positions (plus '
                'cls), not a square grid')
        dst = tuple(self.patch_shape)
        if (src, src) == dst:
            return pos_embed, ((src, src), dst)
        cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]
        dim = patch_pos.shape[-1]
        grid = patch_pos.reshape(1, src, src, dim).permute(0, 3, 1, 2).float()
        grid = F.interpolate(grid, size=dst, mode='bicubic', align_corners=False)
        patch_pos = grid.permute(0, 2, 3, 1).reshape(1, dst[0] * dst[1], dim)
        return (torch.cat([cls_pos, patch_pos.to(pos_embed.dtype)], dim=1),
                ((src, src), dst))

    def _check_keys(self, state_dict: dict, checkpoint: str) -> List[str]:
        """Raise on unexpected, mismatched or missing keys; return those left to init."""
        own = {k: v for k, v in self.state_dict().items()
               if not k.endswith('relative_position_index')}
        unexpected = sorted(k for k in state_dict if k not in own)
        if unexpected:
            raise KeyError(
                f'SdMIMSegViT: {len(unexpected)} keys of {checkpoint!r} match no parameter '
                f'of this backbone: {unexpected[:8]}{" ..." if len(unexpected) > 8 else ""}'
                ' (is it a --to mmseg conversion of a ViT encoder?)')
        mismatched = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                      for k, v in state_dict.items() if v.shape != own[k].shape]
        if mismatched:
            raise ValueError(
                f'SdMIMSegViT: shape mismatch loading {checkpoint!r} (wrong arch?): '
                + '; '.join(mismatched[:8]))
        missing = sorted(k for k in own if k not in state_dict)
        expected = NEW_PARAM_PATTERNS + (FINAL_NORM_KEYS if self.final_norm else ())
        surprising = [k for k in missing if not any(re.fullmatch(p, k) for p in expected)]
        if surprising:
            raise KeyError(
                f'SdMIMSegViT: {checkpoint!r} lacks {len(surprising)} pretrained parameters '
                f'of this backbone: {surprising[:8]}{" ..." if len(surprising) > 8 else ""}'
                ' (depth or naming mismatch?)')
        return missing

    # ------------------------------------------------------------------------ forward
    def forward(self, inputs: torch.Tensor):
        """Features of the blocks in ``out_indices``, each (B, C, H/p, W/p)."""
        if tuple(inputs.shape[-2:]) != tuple(self.img_size):
            raise ValueError(
                f'SdMIMSegViT: input size {tuple(inputs.shape[-2:])} differs from img_size '
                f'{tuple(self.img_size)}; its position embedding and relative position '
                'bias are built for img_size, so crop/pad inputs to it (train: RandomCrop '
                '+ data_preprocessor size; test: mode="slide" with crop_size=img_size)')
        return super().forward(inputs)
