# Demo of the ViTDet transfer protocol (configs/benchmarks/detection/
# vitdet_mask-rcnn_vit-b-p16_simplefpn_16xb4-lsj-100e_coco.py) on the embedded "digit
# scenes" with the demo ViT, trains and evaluates box and mask AP in a few minutes on 2
# CPU cores:
#   .venv/bin/python tools/train.py \
#       configs/demo/vitdet_mask-rcnn_vit-demo_simplefpn_1xb4-300iters_digit-scenes-128x128.py \
#     --cfg-options model.backbone.checkpoint=work_dirs/demo/sdae/backbone_mmdet.pth
# Same architecture and recipe shape as the COCO recipe, scaled down:
#   - patch 8 on 128x128 (a 16x16 map): windows of 8 with global attention in blocks 3
#     and 6 (every third block, as 3/6/9/12 of ViT-B), decomposed relative positions, the
#     8x8 position embedding of the 64-px pretraining interpolated to 16x16, drop path 0.1;
#   - simple feature pyramid with scales 2/1/0.5/0.25 (strides 4..32 from stride 8) and
#     LayerNorm convolutions, 64 channels; RPN with 2 convs; LN 4conv-1fc box head and LN
#     4-conv mask head, narrower (64 channels, fc 256); anchors of 16..128 px;
#   - large-scale jitter at 128 (resize to 0.5-1.5, random 128x128 crop, boxes from the
#     cropped masks), inputs padded to 128x128 with zeros after normalisation; no flip;
#   - 300 iterations of 4 images (4 epochs of the 300 scenes), AdamW lr 5e-4 (higher than
#     COCO's 1e-4: the run is 600 times shorter), weight decay 0.1, layer decay 0.7,
#     30-iteration warm-up, lr x0.1 at 225 and 275 (as the FPN demo).
_base_ = './mask-rcnn_vit-demo_fpn_1xb4-300iters_digit-scenes-128x128.py'

pretrained = 'work_dirs/demo/sdae/backbone_mmdet.pth'
demo_arch = dict(embed_dims=96, num_layers=6, num_heads=3, feedforward_channels=384)
num_classes = 10
image_size = (128, 128)
channels = 64
norm_cfg = dict(type='LN2d', eps=1e-6, requires_grad=True)

model = dict(
    data_preprocessor=dict(pad_size_divisor=128, pad_value=0, pad_mask=True),
    backbone=dict(
        _delete_=True,
        type='ViTDet',
        arch=demo_arch,
        img_size=128,
        patch_size=8,
        pretrain_img_size=64,
        window_size=8,
        global_attn_indexes=(2, 5),
        use_rel_pos=True,
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6),
        checkpoint=pretrained),
    neck=dict(
        _delete_=True,
        type='SimpleFPN',
        in_channels=96,
        out_channels=channels,
        scale_factors=(2.0, 1.0, 0.5, 0.25),
        num_outs=4,
        norm_cfg=norm_cfg),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(
            _delete_=True,
            type='Shared4Conv1FCBBoxHead',
            in_channels=channels,
            conv_out_channels=channels,
            fc_out_channels=256,
            roi_feat_size=7,
            num_classes=num_classes,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            norm_cfg=norm_cfg,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        mask_head=dict(norm_cfg=norm_cfg)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.5, 1.5), keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_type='absolute_range',
        crop_size=image_size,
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2), keep_empty=False),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    optimizer=dict(lr=5e-4, weight_decay=0.1),
    paramwise_cfg=dict(layer_decay_rate=0.7, num_layers=6))
custom_hooks = [dict(type='Fp16CompressionHook')]  # a no-op without DDP
work_dir = 'work_dirs/demo/vitdet'
