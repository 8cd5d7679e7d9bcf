# ViT-S/16 (384 dims, 6 heads) -> UperNet on ADE20K. None of the SdAE, dBOT, RC-MAE or MAE
# papers reports a ViT-S segmentation protocol, so this keeps the ViT-B protocol (lr 1e-4,
# layer decay 0.65, drop path 0.1, blocks 4/6/8/12) and scales the head to the width, as the
# ViT-S UperNet configs of mae_segmentation/iBOT do (decode channels = embed dims).
_base_ = './upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(embed_dims=384, num_heads=6),
    neck=dict(embed_dim=384),
    decode_head=dict(in_channels=[384, 384, 384, 384], channels=384),
    auxiliary_head=dict(in_channels=384))
