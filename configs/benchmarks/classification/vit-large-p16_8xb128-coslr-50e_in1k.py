# Fine-tuning a pretrained ViT-L/16 on ImageNet-1k: the ViT-Large script of FINETUNE.md in
# the SdAE repository (MAE's recipe; SdAE publishes no ViT-L number):
#   --batch_size 32 x 32 GPUs (= 8 x 128) --epochs 50 --blr 1e-3 (lr 4e-3)
#   --layer_decay 0.75 --weight_decay 0.05 --drop_path 0.2 --reprob 0.25
#   --mixup 0.8 --cutmix 1.0 (the rest as the ViT-B config)
_base_ = ['./vit-base-p16_8xb128-coslr-100e_in1k.py']

checkpoint = 'work_dirs/sdae_vit-large-p16_8xb96-amp-coslr-300e_in1k/backbone_mmpretrain.pth'
model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    head=dict(in_channels=1024))

lr = 1e-3 * 1024 / 256
min_lr = 1e-6
max_epochs = 50
warmup_epochs = 5
optim_wrapper = dict(
    optimizer=dict(lr=lr),
    paramwise_cfg=dict(layer_decay_rate=0.75, num_layers=24))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=min_lr / lr,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
