# Demo of the Mask R-CNN + FPN transfer protocol (configs/benchmarks/detection/
# mask-rcnn_vit-b-p16_fpn_*) on the embedded "digit scenes" (128x128 canvases with 2-4
# digits, COCO instances with 10 classes; built by `make data` into
# data/demo) with the demo ViT (96 dims, 6 blocks, 3 heads, patch 8), trains and evaluates
# box and mask AP in a few minutes on 2 CPU cores:
#   .venv/bin/python tools/train.py \
#       configs/demo/mask-rcnn_vit-demo_fpn_1xb4-300iters_digit-scenes-128x128.py \
#     --cfg-options model.backbone.checkpoint=work_dirs/demo/sdae/backbone_mmdet.pth
# The backbone checkpoint is a `tools/convert_checkpoint.py --to mmdet` output of a demo
# pretraining run (teacher or student). Same architecture and recipe shape as the COCO
# benchmark, scaled down:
#   - patch 8 on 128x128: a 16x16 grid; blocks 2/3/4/6 (ViT-B's 4/6/8/12 at half depth)
#     and the patch-8 adapter (deconv x2, identity, max-pool x2, max-pool x4) give
#     strides 4/8/16/32;
#   - 4 pyramid levels, 64 channels, anchors of 16..128 px (digits are about 15-50 px),
#     narrower heads (4 convs of 64 + fc 256, 4-conv mask head of 64), BN in place of
#     SyncBN, fewer proposals and sampled RoIs (128 anchors and 64 RoIs per image);
#   - multi-scale training by random resizing to 0.75-1.25 of 128; no random flip: a
#     mirrored digit is not the same digit;
#   - LayerNorm (LN2d) in the FPN convolutions: the COCO protocol's FPN has no norm, but in a
#     run this short AdamW grows the stride-4 level about 100-fold within 300 iterations
#     (every digit's RoI is pooled there) and the mask head's ReLUs die;
#   - 300 iterations of 4 images (4 epochs of the 300 scenes), AdamW lr 5e-4 (higher than
#     COCO's 3e-4: the run is 300 times shorter), layer decay 0.75, warm-up 30 iterations,
#     lr x0.1 at 225 and 275 (the 1x schedule's 9/12 and 11/12).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/default_runtime.py',
]
default_scope = 'mmdet'
custom_imports = dict(imports=['sdae_mm', 'sdae_mm.downstream.det'], allow_failed_imports=False)

pretrained = 'work_dirs/demo/sdae/backbone_mmdet.pth'
demo_arch = dict(embed_dims=96, num_layers=6, num_heads=3, feedforward_channels=384)
classes = ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
palette = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]
norm_cfg = dict(type='BN', requires_grad=True)
channels = 64
strides = [4, 8, 16, 32]

model = dict(
    backbone=dict(
        _delete_=True,
        type='PlainViT',
        arch=demo_arch,
        img_size=64,  # the pretraining size: the 8x8 pos_embed is interpolated to 16x16
        patch_size=8,
        out_indices=(1, 2, 3, 5),
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6),
        checkpoint=pretrained),
    neck=dict(
        in_channels=[96, 96, 96, 96],
        out_channels=channels,
        num_outs=4,
        norm_cfg=dict(type='LN2d', eps=1e-6, requires_grad=True)),
    rpn_head=dict(
        in_channels=channels,
        feat_channels=channels,
        anchor_generator=dict(scales=[4], ratios=[0.5, 1.0, 2.0], strides=strides)),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels, featmap_strides=strides),
        bbox_head=dict(
            _delete_=True,
            type='ConvFCBBoxHead',
            num_shared_convs=4,
            num_shared_fcs=1,
            in_channels=channels,
            conv_out_channels=channels,
            fc_out_channels=256,
            roi_feat_size=7,
            num_classes=len(classes),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            norm_cfg=norm_cfg,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0)),
        mask_roi_extractor=dict(out_channels=channels, featmap_strides=strides),
        mask_head=dict(
            in_channels=channels, conv_out_channels=channels, num_classes=len(classes))),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=100),
        rcnn=dict(max_per_img=20)))

# data
dataset_type = 'CocoDataset'
data_root = 'data/demo/scenes/'
metainfo = dict(classes=classes, palette=palette)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=(128, 128), ratio_range=(0.75, 1.25), keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='img_dir/train/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='img_dir/val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric=['bbox', 'segm'],
    format_only=False)
test_evaluator = val_evaluator

# schedule
max_iters = 300
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=30),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[225, 275],
        gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75, num_layers=6))

# runtime
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
work_dir = 'work_dirs/demo/mask-rcnn_fpn'
