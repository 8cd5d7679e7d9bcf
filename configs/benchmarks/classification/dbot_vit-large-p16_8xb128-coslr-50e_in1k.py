# dBOT's ViT-L/16 ImageNet-1k fine-tuning (DOWNSTREAM.md of liuxingbin/dbot):
#   --drop_path 0.25 --clip_grad 1.0 --blr 3e-4 (lr 1.2e-3) --layer_decay 0.75
#   --epochs 50, batch 32 x 8 GPUs x 4 nodes = 1024 (rest as dBOT's ViT-B config)
_base_ = ['./dbot_vit-base-p16_8xb128-coslr-100e_in1k.py']

checkpoint = 'work_dirs/dbot_vit-large-p16_32xb128-amp-coslr-1600e_in1k/backbone_mmpretrain.pth'
model = dict(
    backbone=dict(arch='large', drop_path_rate=0.25,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    head=dict(in_channels=1024))

lr = 3e-4 * 1024 / 256
min_lr = 1e-6
max_epochs = 50
warmup_epochs = 5
optim_wrapper = dict(
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(layer_decay_rate=0.75, num_layers=24))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=min_lr / lr,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
