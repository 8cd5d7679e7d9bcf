# The MAE baseline on the embedded digits: mmpretrain's own MAE with the demo ViT, on the
# same data pipeline, optimizer and schedule as the SdAE, dBOT and RC-MAE demos. MAEViT
# draws its random 75 % mask inside the model (the pipeline's ids_shuffle is unused); the
# crops and flips are the same as the other demos' for the same seed.
_base_ = [
    '../_base_/models/demo_vit.py',
    '../_base_/datasets/demo_digits_mim.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='MAE',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='MAEViT', arch={{_base_.demo_arch}}, img_size=64, patch_size=8,
                  mask_ratio=0.75),
    neck=dict(type='MAEPretrainDecoder', num_patches=64, patch_size=8, in_chans=3,
              embed_dim=96, decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4,
              mlp_ratio=4.),
    head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=8,
              loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])

max_epochs = 40
warmup_epochs = 4
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0., flat_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2, save_last=True))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
work_dir = 'work_dirs/demo/mae'
