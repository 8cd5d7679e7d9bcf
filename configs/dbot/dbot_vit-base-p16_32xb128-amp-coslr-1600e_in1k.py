# dBOT ViT-B/16, 1600 epochs in two bootstrapping stages on ImageNet-1k: the official recipe
# (PRETRAIN.md of liuxingbin/dbot, run on 4 nodes x 8 GPUs):
#   --batch_size 128 --epochs 1600 --norm_feature_loss --mask_ratio 0.75
#   --stage_epochs 0 800 1600 --depth 12 12 12 --init_teacher_encoder_depth 12 --sdpr 0.2
#   --blr 1.5e-4 --weight_decay 0.05 --clip_grad 3.0 (run.sh: --warmup_epochs 40)
# Usage (32 GPUs = 4 nodes x 8; other GPU counts scale the lr, see auto_scale_lr):
#   GPUS=32 bash tools/slurm_train.sh PARTITION dbot \
#       configs/dbot/dbot_vit-base-p16_32xb128-amp-coslr-1600e_in1k.py
_base_ = [
    '../_base_/models/dbot_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs128_mim.py',
    '../_base_/default_runtime.py',
]

max_epochs = 1600
warmup_epochs = 40
stage_epochs = [0, 800, 1600]
# lr = blr * effective batch / 256 = 1.5e-4 * 4096 / 256
lr = 1.5e-4 * 128 * 32 / 256

model = dict(data_preprocessor={{_base_.data_preprocessor}})

# fp16 autocast with a dynamic grad scaler and grad-norm clipping at 3.0 (official
# NativeScaler with --clip_grad); AdamW betas (0.9, 0.95), wd 0.05, timm's add_weight_decay
# (no decay for biases and 1-D parameters; cls and mask tokens are decayed).
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.95), weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    # the teacher has no gradient: leave it out of the optimizer
    constructor='TrainableOptimWrapperConstructor',
    paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0., flat_decay_mult=0.))

# Official util/lr_sched.py: in every stage a 40-epoch linear warm-up from 0 and a cosine
# to 0, per iteration. per_stage=False gives one schedule over the whole run.
param_scheduler = [
    dict(type='StagewiseCosineLR', stage_epochs=stage_epochs, warmup_epochs=warmup_epochs,
         eta_min=0., per_stage=True, by_epoch=True, convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)

# At epoch 800 the teacher takes the student's weights and the student is re-initialised;
# the AdamW state goes on (reset_optimizer=True clears it).
custom_hooks = [
    dict(type='DBOTStageHook', stage_epochs=stage_epochs, reset_optimizer=False),
]

# Official: every 10 epochs (checkpoint-last) and at every stage boundary.
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3,
                                     save_last=True))

auto_scale_lr = dict(base_batch_size=4096, enable=True)
