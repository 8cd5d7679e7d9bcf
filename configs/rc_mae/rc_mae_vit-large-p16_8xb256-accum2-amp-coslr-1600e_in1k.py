# RC-MAE ViT-L/16, 1600 epochs (scripts/pretrain_rc_mae_vit_large_1600ep.sh): as ViT-B with
# --model rc_vit_large_patch16 (decoder 512-d x 8 blocks).
_base_ = ['./rc_mae_vit-base-p16_8xb256-accum2-amp-coslr-1600e_in1k.py']

model = dict(
    backbone=dict(arch='l'),
    neck=dict(in_channels=1024))
