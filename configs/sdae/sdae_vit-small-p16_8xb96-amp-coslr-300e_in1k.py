# SdAE ViT-S/16 (official mae_vit_small_patch16 student: 384-d, 12 blocks, 6 heads, decoder
# 512-d x 8; teacher vit_small_patch16). The official code gives no separate ViT-S
# hyperparameters; this keeps the ViT-B 300-epoch recipe (see docs/fidelity.md).
_base_ = ['./sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py']

model = dict(
    backbone=dict(arch='deit-small'),
    neck=dict(in_channels=384, out_channels=384),
    teacher=dict(arch='deit-small'))
