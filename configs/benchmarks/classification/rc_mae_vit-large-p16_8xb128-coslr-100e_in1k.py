# RC-MAE's ViT-L/16 ImageNet-1k fine-tuning (scripts/finetune_rc_mae_large.sh of
# youngwanLEE/rc-mae): batch 64 x 2 (accum) x 8 GPUs = 1024, --epochs 100 --blr 5e-4
# (lr 2e-3) --layer_decay 0.65 --weight_decay 0.05 --drop_path 0.2 --reprob 0.25
# --mixup 0.8 --cutmix 1.0 (rest as the ViT-B config). Here 8 x 128 without accumulation
# (same effective batch); with less memory use 8 x 64 and optim_wrapper.accumulative_counts=2.
_base_ = ['./vit-base-p16_8xb128-coslr-100e_in1k.py']

checkpoint = 'work_dirs/rc_mae_vit-large-p16_8xb256-accum2-amp-coslr-1600e_in1k/backbone_mmpretrain.pth'
model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    head=dict(in_channels=1024))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.65, num_layers=24))
