# Demo of the UperNet transfer protocol on the embedded "digit scenes" (128x128 canvases,
# 11 classes: background + digits; built by `make data` into data/demo) with the demo ViT
# (96 dims, 6 blocks, 3 heads, patch 8; configs/_base_/models/demo_vit.py), on CPU in a few
# minutes:
#   .venv/bin/python tools/train.py \
#       configs/demo/upernet_vit-demo_1xb8-300iters_digit-scenes-128x128.py \
#     --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/demo/sdae/backbone_mmseg.pth
# The backbone checkpoint is a `tools/convert_checkpoint.py --to mmseg` output of a demo
# pretraining run (teacher or student). Same architecture and recipe shape as the ADE20K
# benchmark (configs/benchmarks/segmentation/), scaled down:
#   - patch 8 on 128x128: a 16x16 grid; blocks 2/3/4/6 (the ViT-B 4/6/8/12 at half depth);
#     rescales (2, 1, 0.5, 0.25) give the usual 1/4..1/32 pyramid, as (4, 2, 1, 0.5) do for
#     patch 16;
#   - BN instead of SyncBN, narrower heads, lr 1e-3 with a 30-iteration warm-up,
#     sliding-window test with a 128 crop and stride 85 (512/341 scaled);
#   - demo-only: background weighted 0.1 in the loss, resize ratios 1.0-1.25 (no padding),
#     no random flip (a mirrored digit is not the same digit).
_base_ = [
    '../benchmarks/segmentation/_base_/models/upernet_vit-b-p16.py',
    '../benchmarks/segmentation/_base_/default_runtime.py',
]
crop_size = (128, 128)
norm_cfg = dict(type='BN', requires_grad=True)
# background is ~92% of the pixels, each digit ~1%: weigh it down so that the digits
# emerge within a few hundred iterations (ADE20K has no such dominant class)
class_weight = [0.1] + [1.0] * 10
model = dict(
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size=crop_size)),
    backbone=dict(
        img_size=crop_size,
        patch_size=8,
        embed_dims=96,
        num_layers=6,
        num_heads=3,
        mlp_ratio=4,
        out_indices=(1, 2, 3, 5),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/demo/sdae/backbone_mmseg.pth')),
    neck=dict(embed_dim=96, rescales=[2, 1, 0.5, 0.25], norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=[96, 96, 96, 96],
        channels=64,
        num_classes=11,
        norm_cfg=norm_cfg,
        loss_decode=dict(class_weight=class_weight)),
    auxiliary_head=dict(
        in_channels=96,
        channels=32,
        num_classes=11,
        norm_cfg=norm_cfg,
        loss_decode=dict(class_weight=class_weight)),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(85, 85)))

# data
dataset_type = 'DigitScenesDataset'
data_root = 'data/demo/scenes'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    # enlarge only: mmseg 1.2.2's weighted cross-entropy cannot take the ignore label
    # that padding a smaller image would bring
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(1.0, 1.25),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# schedule: the benchmark's AdamW + layer decay + warm-up/poly, shortened
max_iters = 300
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65, num_layers=6))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=30),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=30,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters,
        max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
