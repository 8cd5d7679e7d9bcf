# The MAE baseline, ViT-B/16, 1600 epochs: mmpretrain's MAE (MAE, MAEViT,
# MAEPretrainDecoder, MAEPretrainHead) on the data pipeline, runtime and schedule style of
# the sdae-mm recipes, with the official MAE hyper-parameters (facebookresearch/mae
# PRETRAIN.md: effective batch 4096, blr 1.5e-4, wd 0.05, 40 warm-up epochs, norm_pix_loss,
# mask ratio 0.75). MAEViT draws its own mask; the pipeline's ids_shuffle is unused.
_base_ = [
    '../_base_/models/mae_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs128_mim.py',
    '../_base_/default_runtime.py',
]

max_epochs = 1600
warmup_epochs = 40
lr = 1.5e-4 * 512 * 8 / 256

model = dict(data_preprocessor={{_base_.data_preprocessor}})
train_dataloader = dict(batch_size=512)

# Official MAE: timm's add_weight_decay (no decay for biases and 1-D parameters).
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0., flat_decay_mult=0.))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=20, max_keep_ckpts=3,
                                     save_last=True))

auto_scale_lr = dict(base_batch_size=4096, enable=True)
