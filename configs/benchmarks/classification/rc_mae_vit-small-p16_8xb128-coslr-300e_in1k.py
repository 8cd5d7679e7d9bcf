# RC-MAE's ViT-S/16 ImageNet-1k fine-tuning (scripts/finetune_rc_mae_small.sh of
# youngwanLEE/rc-mae): batch 128 x 8 GPUs, --epochs 300 --blr 5e-4 (lr 2e-3)
# --layer_decay 0.75 --weight_decay 0.05 --drop_path 0.1 --reprob 0.25 --mixup 0.8
# --cutmix 1.0 (rest as the ViT-B config). The encoder is RC-MAE's teacher, the default
# branch of tools/convert_checkpoint.py for RC-MAE.
_base_ = ['./vit-base-p16_8xb128-coslr-100e_in1k.py']

checkpoint = 'work_dirs/rc_mae_vit-small-p16_8xb512-amp-coslr-1600e_in1k/backbone_mmpretrain.pth'
# mmpretrain's 'deit-small' = timm vit_small_patch16 (384 dims, 12 blocks, 6 heads);
# mmpretrain's 'small' is the original ViT paper's 768-wide, 8-block model
model = dict(
    backbone=dict(arch='deit-small', init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    head=dict(in_channels=384))

lr = 5e-4 * 1024 / 256
min_lr = 1e-6
max_epochs = 300
warmup_epochs = 5
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=min_lr / lr,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
