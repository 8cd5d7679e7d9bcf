# dBOT's ViT-B/16 ImageNet-1k fine-tuning (DOWNSTREAM.md + run.sh imagenet_finetune of
# liuxingbin/dbot): the ViT-B recipe with --blr 3e-4 (lr = 3e-4 * 1024 / 256 = 1.2e-3)
# and the head weight initialised with trunc_normal(std=0.01) (dBOT's main_finetune.py).
#   batch 32 x 8 GPUs x 4 nodes = 1024, 100 epochs, layer decay 0.65, drop path 0.1,
#   weight decay 0.05, mixup 0.8, cutmix 1.0, reprob 0.25, smoothing 0.1, global pool.
_base_ = ['./vit-base-p16_8xb128-coslr-100e_in1k.py']

checkpoint = 'work_dirs/dbot_vit-base-p16_32xb128-amp-coslr-1600e_in1k/backbone_mmpretrain.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    head=dict(init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01, bias=0.)]))

lr = 3e-4 * 1024 / 256
min_lr = 1e-6
max_epochs = 100
warmup_epochs = 5
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=min_lr / lr,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
