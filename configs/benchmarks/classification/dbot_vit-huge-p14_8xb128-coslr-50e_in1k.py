# dBOT's ViT-H/14 ImageNet-1k fine-tuning at 224 (DOWNSTREAM.md of liuxingbin/dbot):
#   --drop_path 0.3 --blr 3e-4 (lr 1.2e-3) --layer_decay 0.75 --epochs 50
#   --batch_size 16 --accum_iter 2, 8 GPUs x 4 nodes = 1024 (no gradient clipping)
# Here 8 GPUs x 128 images; with less memory use e.g. 8 x 64 and
# optim_wrapper.accumulative_counts=2.
_base_ = ['./dbot_vit-base-p16_8xb128-coslr-100e_in1k.py']

checkpoint = 'work_dirs/dbot_vit-huge-p14_32xb128-amp-coslr-1600e_in1k/backbone_mmpretrain.pth'
model = dict(
    backbone=dict(arch='huge', patch_size=14, drop_path_rate=0.3,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    head=dict(in_channels=1280))

lr = 3e-4 * 1024 / 256
min_lr = 1e-6
max_epochs = 50
warmup_epochs = 5
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75, num_layers=32))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=min_lr / lr,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
