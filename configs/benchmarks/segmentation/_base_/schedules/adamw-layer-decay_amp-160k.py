# MAE/BEiT segmentation schedule (BEiT's semantic_segmentation configs, used unchanged by
# MAE, mae_segmentation and dBOT; mmseg 1.2.2 configs/mae/mae-base_upernet_8xb2-amp-160k_...):
# AdamW lr 1e-4 (total batch 16), wd 0.05, layer decay 0.65 through sdae-mm's shared
# constructor with BEiT's no-decay rule (only 1-D parameters and biases are exempt),
# 160k iterations of poly (power 1) decay to 0 with a 1,500-iteration linear warm-up from
# 1e-6 on top of it (mmcv 0.x: the warm-up factor multiplies the poly lr).
optim_wrapper = dict(
    type='AmpOptimWrapper',  # fp16, dynamic loss scale (GPU only; use OptimWrapper on CPU)
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65, num_layers=12, no_decay_rule='beit'))
# Both schedulers run from iteration 0 and multiply (mmengine chains them): lr(t) =
# lr * (1 - t / 160000) * min(1, 1e-6 + (1 - 1e-6) * t / 1500), the lr of mmcv 0.x's
# PolyLrUpdaterHook with linear warm-up (mmseg 1.x's own config starts the poly decay
# after the warm-up instead). mmengine's linear and poly schedulers reach their end value
# at iteration end - 1, hence the ends 1 + 1,500 and 1 + 160,000.
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1501),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=0,
        end=160001,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=160000, val_interval=16000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=16000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# lr 1e-4 is for 8 GPUs x 2 images; `--auto-scale-lr` (or enable=True) rescales it linearly
auto_scale_lr = dict(enable=False, base_batch_size=16)
