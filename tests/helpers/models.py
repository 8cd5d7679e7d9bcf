"""Tiny model configs and masked-batch samples for tests."""
import torch
from mmpretrain.structures import DataSample

#: A 2-block, 32-wide ViT for unit tests.
TINY_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
#: The demo configs' ViT (configs/_base_/models/demo_vit.py): 6 blocks, 96 wide.
DEMO_ARCH = dict(embed_dims=96, num_layers=6, num_heads=3, feedforward_channels=384)


def tiny_sdae_cfg(img_size=32, patch_size=8, num_teacher_tokens=12, num_folds=3, **kwargs):
    """An SdAE with a 2-block, 32-wide ViT on ``img_size`` images."""
    num_patches = (img_size // patch_size)**2
    vit = dict(type='MIMVisionTransformer', arch=TINY_ARCH, img_size=img_size,
               patch_size=patch_size)
    cfg = dict(
        type='SdAE',
        backbone=dict(vit, drop_path_rate=0., init_mode='mae', fixed_pos_embed=True),
        neck=dict(type='MIMDecoder', num_patches=num_patches, in_channels=32,
                  out_channels=32, embed_dims=16, num_layers=1, num_heads=2),
        head=dict(type='FeatureDistillHead', loss=dict(type='CosineDistanceLoss', dim=1)),
        num_teacher_tokens=num_teacher_tokens,
        num_folds=num_folds,
        teacher=dict(vit, drop_path_rate=0., init_mode='timm', fixed_pos_embed=False))
    cfg.update(kwargs)
    return cfg


def mask_samples(ids_shuffle, num_visible):
    """One ``DataSample`` per row of ``ids_shuffle`` with the fields the mask generators
    pack: ``ids_shuffle`` (numpy) and ``mask`` (1 = masked, the first ``num_visible`` of
    the permutation visible)."""
    out = []
    for ids in ids_shuffle:
        ds = DataSample()
        mask = torch.ones(ids.numel(), dtype=torch.uint8)
        mask[ids[:num_visible]] = 0
        ds.set_field(ids.numpy(), 'ids_shuffle')
        ds.set_field(mask, 'mask')
        out.append(ds)
    return out
