# Linear probe of the demo ViT on the embedded digits (data/demo/cls, 64x64, 10 classes):
# the ImageNet protocol of vit-base-p16_linear-8xb512-coslr-90e_in1k.py (official
# main_linprobe.py) at CPU size. Same model and optimiser: frozen encoder, cls token after
# the pretrained final norm, BatchNorm without affine, linear head (trunc-normal 0.01 init),
# LARS (momentum 0.9, trust coefficient 0.001, bias excluded), no weight decay, linear
# warm-up then cosine to 0. Scaled: the 6-block 96-d demo ViT with 8-px patches, batch 64,
# 10 epochs (220 steps) with 1 of warm-up, crops of 35-100 % (digits must stay legible), no
# flips (a mirrored digit is another symbol), test resize 73 + center crop 64 (crop_pct
# 0.875), and lr 51.2: LARS moves the head by about lr x 0.001 of its norm per step, and
# 220 steps need a much larger lr than the ~28,000 of the ImageNet protocol (the blr rule
# would give 0.025, which leaves the head near its initialisation). The large steps make
# the training loss spike during the first epochs; it settles as the lr decays.
#
#   .venv/bin/python tools/train.py configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py
#   # the randomly initialised baseline of the same protocol:
#   .venv/bin/python tools/train.py configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py \
#       --work-dir work_dirs/demo/linear_random --cfg-options model.backbone.init_cfg=None
_base_ = ['../benchmarks/classification/vit-base-p16_linear-8xb512-coslr-90e_in1k.py']

# the demo ViT of every demo config (configs/_base_/models/demo_vit.py); _delete_ replaces
# the base config's arch='base'
demo_arch = dict(_delete_=True, embed_dims=96, num_layers=6, num_heads=3,
                 feedforward_channels=384)
# .venv/bin/python tools/convert_checkpoint.py work_dirs/demo/sdae/epoch_60.pth \
#     work_dirs/demo/sdae/backbone_mmpretrain.pth --to mmpretrain
checkpoint = 'work_dirs/demo/sdae/backbone_mmpretrain.pth'

model = dict(
    backbone=dict(arch=demo_arch, img_size=64, patch_size=8, frozen_stages=6,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(input_features=96),
    head=dict(num_classes=10, in_channels=96))

data_root = 'data/demo/cls'
data_preprocessor = dict(num_classes=10)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.35, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=73, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    pin_memory=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=2,
    persistent_workers=True,
    pin_memory=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 data_prefix='val', pipeline=test_pipeline))
test_dataloader = val_dataloader

lr = 51.2
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='LARS', lr=lr, weight_decay=0., momentum=0.9, eta=0.001),
    paramwise_cfg=dict(custom_keys={'head.fc.bias': dict(lars_exclude=True)}))

max_epochs = 10
warmup_epochs = 1
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(_delete_=True, type='CheckpointHook', interval=max_epochs,
                    max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
auto_scale_lr = dict(base_batch_size=64, enable=False)
work_dir = 'work_dirs/demo/linear'
