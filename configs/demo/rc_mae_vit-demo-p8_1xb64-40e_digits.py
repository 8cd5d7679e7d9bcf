# RC-MAE on the embedded digits, small enough to pretrain in a few minutes on 2 CPU cores.
# Same method and code as the ImageNet recipe; only sizes and schedule are scaled down:
# 64-px images (64 patches of 8x8x3 pixels), the 6-block demo ViT, a 2-block decoder,
# 40 epochs, the teacher (encoder + decoder) following the student by EMA every iteration.
_base_ = [
    '../_base_/models/demo_vit.py',
    '../_base_/datasets/demo_digits_mim.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='RCMAE',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='MIMVisionTransformer', arch={{_base_.demo_arch}}, img_size=64,
                  patch_size=8, drop_path_rate=0., init_mode='mae', fixed_pos_embed=True),
    neck=dict(type='MIMDecoder', num_patches=64, in_channels=96, out_channels=8 * 8 * 3,
              embed_dims=64, num_layers=2, num_heads=4, mlp_ratio=4.),
    head=dict(type='RCMAEHead', norm_pix=True, patch_size=8, consistency_weight=1.0,
              loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    teacher_init='student',
)

max_epochs = 40
warmup_epochs = 4
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05),
    # the teacher has no gradient: leave it out of the optimizer
    constructor='TrainableOptimWrapperConstructor',
    paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0., flat_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.996, end_momentum=1.0, update_interval='iter',
         schedule_unit='iter'),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2, save_last=True))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
work_dir = 'work_dirs/demo/rc_mae'
