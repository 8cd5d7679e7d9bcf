# SdAE ViT-L/16 (official mae_vit_large_patch16 student: 1024-d, 24 blocks, 16 heads,
# decoder 512-d x 8; teacher vit_large_patch16). No separate official ViT-L hyperparameters;
# the ViT-B 300-epoch recipe is kept (see docs/fidelity.md).
_base_ = ['./sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py']

model = dict(
    backbone=dict(arch='l'),
    neck=dict(in_channels=1024, out_channels=1024),
    teacher=dict(arch='l'))
