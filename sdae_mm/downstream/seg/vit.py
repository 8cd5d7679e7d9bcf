"""A ViT backbone for mmseg that starts from a pretrained ViT checkpoint."""
from typing import Optional

import torch
from mmseg.models.backbones import MAE
from mmseg.registry import MODELS

from sdae_mm.checkpoint import load_encoder, load_state_dict_strict

#: Parameters a pretrained plain ViT encoder does not have; the backbone creates them.
NEW_PARAM_PATTERNS = (
    r'layers\.\d+\.attn\.relative_position_bias_table',  # relative position bias (zeros)
    r'layers\.\d+\.attn\.relative_position_index',  # a buffer, built for our grid
    r'layers\.\d+\.gamma_[12]',  # layer scale (``init_values``)
)

#: Final norm of the pretrained encoder: unused when ``final_norm=False`` (MAE/BEiT protocol).
FINAL_NORM_KEYS = (r'ln1\.weight', r'ln1\.bias')

#: ``init_cfg.prefix`` of a pretraining checkpoint -> encoder branch
PREFIX_BRANCH = {'backbone.': 'student', 'teacher.': 'teacher'}


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
    pretrained ViT from ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` through
    :mod:`sdae_mm.checkpoint`:

    - the checkpoint may be a ``tools/convert_checkpoint.py --to mmseg`` output, or any
      layout the converter reads (an sdae-mm pretraining checkpoint, an official SdAE,
      dBOT, RC-MAE or MAE file, a timm ViT); its encoder is taken as the converter takes it
      (default branch: the one the method's paper fine-tunes). ``init_cfg.prefix``
      (``'teacher.'`` or ``'backbone.'``) chooses the teacher or the student instead;
    - ``pos_embed`` is interpolated (bicubic, cls position kept) to this backbone's patch
      grid, e.g. 14x14 -> 32x32 for 224 -> 512;
    - the pretrained final norm (``ln1``) is not used unless ``final_norm=True``;
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
        """Load a pretrained encoder (any layout :mod:`sdae_mm.checkpoint` reads).

        Args:
            checkpoint (str): Path of the checkpoint.
            prefix (str, optional): ``'teacher.'`` or ``'backbone.'``: the teacher or the
                student encoder of a pretraining checkpoint. Defaults to the branch the
                method's paper fine-tunes.

        Returns:
            dict: The report also stored in :attr:`init_report`: ``checkpoint``,
            ``prefix``, ``loaded``, ``skipped``, ``initialised`` key lists, and
            ``pos_embed`` (source and target grids).
        """
        if not checkpoint:
            raise ValueError(
                'SdMIMSegViT: no pretrained checkpoint given; set '
                'model.backbone.init_cfg.checkpoint=<converted .pth> (tools/'
                'convert_checkpoint.py --to mmseg), or init_cfg=None to train from scratch')
        if prefix and prefix not in PREFIX_BRANCH:
            raise KeyError(f'SdMIMSegViT: init_cfg.prefix must be one of '
                           f'{sorted(PREFIX_BRANCH)} or None, got prefix {prefix!r}')
        state_dict, meta = load_encoder(str(checkpoint), target='mmseg',
                                        branch=PREFIX_BRANCH.get(prefix))
        src_grid = tuple(meta['grid'])
        report = load_state_dict_strict(
            self, state_dict, str(checkpoint),
            new_keys=NEW_PARAM_PATTERNS + (FINAL_NORM_KEYS if self.final_norm else ()),
            unused_keys=() if self.final_norm else FINAL_NORM_KEYS,
            pos_grid=tuple(self.patch_shape), num_extra_tokens=1)
        self.init_report = dict(
            checkpoint=checkpoint, prefix=prefix, loaded=report['loaded'],
            skipped=report['ignored'], initialised=[
                k for k in report['initialised'] if not k.endswith('relative_position_index')],
            pos_embed=(src_grid, tuple(self.patch_shape)), source=meta)
        return self.init_report

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
