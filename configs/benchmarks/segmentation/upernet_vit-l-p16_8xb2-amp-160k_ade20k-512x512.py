# ViT-L/16 (1024 dims, 24 blocks, 16 heads) -> UperNet on ADE20K.
# Features from blocks 8/12/16/24, drop path 0.2, decode channels 1024, lr 3e-5 and layer
# decay 0.95: dBOT's published ViT-L ADE20K recipe (DOWNSTREAM.md of liuxingbin/dbot, built
# on mae_segmentation, whose own ViT-L config uses lr 2e-5 / 0.95). MAE's paper gives no
# ViT-L segmentation hyper-parameters (it searched the lr per entry) and SdAE/RC-MAE report
# ViT-B only. See docs/transfer.md.
_base_ = './upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        embed_dims=1024,
        num_layers=24,
        num_heads=16,
        out_indices=(7, 11, 15, 23),
        drop_path_rate=0.2),
    neck=dict(embed_dim=1024),
    decode_head=dict(in_channels=[1024, 1024, 1024, 1024], channels=1024),
    auxiliary_head=dict(in_channels=1024))
optim_wrapper = dict(
    optimizer=dict(lr=3e-5),
    paramwise_cfg=dict(layer_decay_rate=0.95, num_layers=24))
