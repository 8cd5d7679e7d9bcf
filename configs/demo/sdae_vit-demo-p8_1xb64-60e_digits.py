# SdAE on the embedded digits, small enough to pretrain in a few minutes on 2 CPU cores.
# Same method and code as the ImageNet recipe; only sizes and schedule are scaled down:
# 64-px images (64 patches), 48 masked tokens for the teacher in 3 folds of 16, a 6-block
# ViT, a 2-block decoder, 60 epochs, and the teacher's EMA every iteration (with so few
# epochs a once-per-epoch teacher would barely leave its random initialisation).
_base_ = [
    '../_base_/models/demo_vit.py',
    '../_base_/datasets/demo_digits_mim.py',
    '../_base_/default_runtime.py',
]

train_pipeline = [
    dict(type='SeedPerSample'),  # per-sample seeds: exact resume with workers
    dict(type='DecodeRandomResizedCrop', scale=64, crop_ratio_range=(0.35, 1.0),
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='MultiFoldMaskGenerator', input_size=64, patch_size=8, mask_ratio=0.75,
         num_teacher_tokens=48, num_folds=3),
    dict(type='PackInputs', algorithm_keys=['ids_shuffle'], meta_keys=['img_path']),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

model = dict(
    type='SdAE',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='MIMVisionTransformer', arch={{_base_.demo_arch}}, img_size=64,
                  patch_size=8, drop_path_rate=0.1, init_mode='mae', fixed_pos_embed=True),
    neck=dict(type='MIMDecoder', num_patches=64, in_channels=96, out_channels=96,
              embed_dims=64, num_layers=2, num_heads=4, mlp_ratio=4.),
    head=dict(type='FeatureDistillHead', norm_target=True, norm_eps=1e-6, unbiased_var=True,
              loss=dict(type='CosineDistanceLoss', dim=1)),
    num_teacher_tokens=48,
    num_folds=3,
    teacher=dict(type='MIMVisionTransformer', arch={{_base_.demo_arch}}, img_size=64,
                 patch_size=8, drop_path_rate=0., init_mode='timm', fixed_pos_embed=False),
    teacher_init='random',
)

max_epochs = 60
warmup_epochs = 4
optim_wrapper = dict(
    type='OptimWrapper',
    # fused: torch's one-kernel AdamW (CPU and CUDA), the same update as the default
    # per-tensor loop, several times faster (see docs/speed.md)
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.04,
                   fused=True),
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
    dict(type='TeacherEMAHook', momentum=0.99, end_momentum=0.999,
         update_interval='iter', schedule_unit='iter'),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2, save_last=True))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
work_dir = 'work_dirs/demo/sdae'
