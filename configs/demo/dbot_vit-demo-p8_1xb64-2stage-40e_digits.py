# dBOT on the embedded digits, small enough to pretrain in a few minutes on 2 CPU cores.
# Same method and code as the ImageNet recipe; only sizes and schedule are scaled down:
# 64-px images (64 patches), the 6-block demo ViT, a 2-block decoder, 40 epochs in two
# bootstrapping stages of 20 (the teacher takes the student's weights at epoch 20 and the
# student restarts from a fresh initialisation), each with its own lr warm-up and cosine.
_base_ = [
    '../_base_/models/demo_vit.py',
    '../_base_/datasets/demo_digits_mim.py',
    '../_base_/default_runtime.py',
]

vit = dict(type='MIMVisionTransformer', arch={{_base_.demo_arch}}, img_size=64, patch_size=8,
           init_mode='mae', fixed_pos_embed=True)
model = dict(
    type='DBOT',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(vit, drop_path_rate=0.1),
    neck=dict(type='MIMDecoder', num_patches=64, in_channels=96, out_channels=96,
              embed_dims=64, num_layers=2, num_heads=4, mlp_ratio=4.),
    head=dict(type='MaskedFeatureDistillHead', norm_target=True, norm_eps=1e-6,
              unbiased_var=True, loss=dict(type='MaskedSmoothL1Loss', beta=2.0)),
    teacher_depths=(6, 6),
    teacher_final_norm=False,
    teacher=dict(vit, drop_path_rate=0.),
    teacher_init='student',
)

max_epochs = 40
warmup_epochs = 2
stage_epochs = [0, 20, 40]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    # the teacher has no gradient: leave it out of the optimizer
    constructor='TrainableOptimWrapperConstructor',
    paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0., flat_decay_mult=0.))
param_scheduler = [
    dict(type='StagewiseCosineLR', stage_epochs=stage_epochs, warmup_epochs=warmup_epochs,
         eta_min=0., per_stage=True, by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
custom_hooks = [
    dict(type='DBOTStageHook', stage_epochs=stage_epochs, reset_optimizer=False),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2, save_last=True))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
work_dir = 'work_dirs/demo/dbot'
