# SdAE ViT-B/16, 300 epochs on ImageNet-1k: the official recipe (README of AbrahamYabo/SdAE).
#   --batch_size 96 x 8 GPUs --epochs 300 --warmup_epochs 60 --mask_ratio 0.75
#   --blr 2.666e-4 --ema_op per_epoch --momentum_teacher 0.96 --momentum_teacher_final 0.99
#   --drop_path 0.25 --shrink_num 147 --ncrop_loss 3
# Usage: bash tools/dist_train.sh configs/sdae/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py 8
_base_ = [
    '../_base_/models/sdae_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs96_sdae.py',
    '../_base_/default_runtime.py',
]

max_epochs = 300
warmup_epochs = 60
# lr = blr * effective batch / 256 = 2.666e-4 * 768 / 256
lr = 2.666e-4 * 96 * 8 / 256

# fp16 autocast with a dynamic grad scaler (official NativeScaler, no grad clipping).
# AdamW betas (0.9, 0.95), constant wd 0.04 (official default; weight_decay_end is unused
# there); timm's add_weight_decay: no decay for biases and 1-D (norm) parameters. The
# frozen sine-cosine position embedding and the teacher get no gradient.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    # fused: torch's one-kernel AdamW (CPU and CUDA), the same update as the default
    # per-tensor loop, several times faster (see docs/speed.md)
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.95), weight_decay=0.04,
                   fused=True),
    # the teacher has no gradient: leave it out of the optimizer
    constructor='TrainableOptimWrapperConstructor',
    paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0., flat_decay_mult=0.))

# Per-iteration half-cycle cosine after a linear warm-up from 0 (official lr_sched.py).
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)

# Teacher EMA once per epoch, momentum 0.96 -> 0.99 on a cosine over epochs (ema_op=per_epoch).
# For the official per_ite variant: update_interval='iter' (schedule_unit stays 'epoch').
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.96, end_momentum=0.99,
         update_interval='epoch', schedule_unit='epoch'),
]

# Save every 20 epochs and the last one, as the official loop does.
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=20, max_keep_ckpts=3,
                                     save_last=True))

# The lr above is for 8 x 96 images; other GPU counts scale it linearly (official rule).
auto_scale_lr = dict(base_batch_size=768, enable=True)
