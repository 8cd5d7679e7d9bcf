# RC-MAE ViT-B/16, 1600 epochs on ImageNet-1k: the official recipe
# (scripts/pretrain_rc_mae_vit_base_1600ep.sh of youngwanLEE/rc-mae, 8 GPUs):
#   --model rc_vit_base_patch16 --batch_size 256 --accum_iter 2 --epochs 1600
#   --warmup_epochs 40 --norm_pix_loss --mask_ratio 0.75 --gamma 1.0 --blr 1.5e-4
#   --weight_decay 0.05 (run_pretrain.py: --momentum_teacher 0.996)
# Fine-tuning uses the teacher (--checkpoint_key teacher): convert the `teacher.` weights.
# Usage: bash tools/dist_train.sh \
#            configs/rc_mae/rc_mae_vit-base-p16_8xb256-accum2-amp-coslr-1600e_in1k.py 8
_base_ = [
    '../_base_/models/rc_mae_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs128_mim.py',
    '../_base_/default_runtime.py',
]

max_epochs = 1600
warmup_epochs = 40
# lr = blr * effective batch / 256 = 1.5e-4 * (256 * 2 * 8) / 256
lr = 1.5e-4 * 256 * 2 * 8 / 256

model = dict(data_preprocessor={{_base_.data_preprocessor}})
train_dataloader = dict(batch_size=256)

# fp16 autocast with a dynamic grad scaler (official NativeScaler, no clipping), gradients
# accumulated over 2 iterations; AdamW betas (0.9, 0.95), wd 0.05, timm's add_weight_decay.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    accumulative_counts=2,
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.95), weight_decay=0.05),
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

# Teacher EMA after every iteration (every micro-batch, as officially) with the momentum
# of the official run: engine_pretrain.py:112 takes momentum_schedule[data_iter_step], the
# step *within the epoch*, of run_pretrain.py:292's cosine_scheduler(0.996, 1, epochs,
# len(data_loader_train)) over the whole run, so the momentum restarts at 0.996 every
# epoch and never exceeds 0.996 + 4e-9 (schedule_unit='epoch_step'). The global cosine
# 0.996 -> 1 that the paper describes is the variant
# rc_mae_vit-base-p16_8xb256-accum2-amp-coslr-1600e-paper-momentum_in1k.py
# (schedule_unit='iter'); see docs/fidelity.md.
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.996, end_momentum=1.0, update_interval='iter',
         schedule_unit='epoch_step'),
]

# Official: every 20 epochs and the last one.
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=20, max_keep_ckpts=3,
                                     save_last=True))

# lr 2.4e-3 is for the effective batch 8 GPUs x 256 x 2 accumulation steps = 4096
# (run_pretrain.py:258-261: eff_batch_size = batch_size * accum_iter * world_size); the
# RecipeRunner (sdae_mm/engine/runner.py) counts the accumulation when it scales the lr.
auto_scale_lr = dict(base_batch_size=4096, enable=True)
