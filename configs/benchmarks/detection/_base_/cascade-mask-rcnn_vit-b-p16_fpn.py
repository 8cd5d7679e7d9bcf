# Cascade Mask R-CNN + FPN on a plain ViT-B/16 with the multi-scale adapter (blocks
# 4/6/8/12 -> deconv x4, deconv x2, identity, max-pool x2), as dBOT's COCO benchmark
# (liuxingbin/dbot evaluation/object_detection/configs/_base_/models/
# cascade_mask_rcnn_vit_fpn.py + cascade_rcnn/vit_base_giou_4conv1f_coco_3x.py, from iBOT):
# three 4conv-1fc box heads with SyncBN and a GIoU loss (weight 10) on decoded boxes
# (class-specific regression, stage stds 0.1/0.2, 0.05/0.1, 0.033/0.067), drop path 0.2,
# the rest as mmdet's Cascade Mask R-CNN R50-FPN (2,000 training proposals per image).
_base_ = 'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py'

# Converted backbone weights; override with
#   --cfg-options model.backbone.checkpoint=PATH   (None: random initialisation)
pretrained = 'work_dirs/dbot_vit-base-p16_32xb128-amp-coslr-1600e_in1k/backbone_mmdet.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)


def _box_head(stds):
    return dict(
        type='ConvFCBBoxHead',
        num_shared_convs=4,
        num_shared_fcs=1,
        in_channels=256,
        conv_out_channels=256,
        fc_out_channels=1024,
        roi_feat_size=7,
        num_classes=80,
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0., 0., 0., 0.],
            target_stds=stds),
        reg_class_agnostic=False,
        reg_decoded_bbox=True,
        norm_cfg=norm_cfg,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=10.0))


model = dict(
    backbone=dict(
        _delete_=True,
        type='PlainViT',
        arch='base',
        img_size=224,  # pos_embed grid of pretraining, interpolated to the input
        patch_size=16,
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.2,
        qkv_bias=True,
        norm_cfg=dict(type='LN', eps=1e-6),
        adapter_norm_cfg=norm_cfg,
        checkpoint=pretrained),
    neck=dict(in_channels=[768, 768, 768, 768], out_channels=256, num_outs=5),
    roi_head=dict(bbox_head=[
        _box_head([0.1, 0.1, 0.2, 0.2]),
        _box_head([0.05, 0.05, 0.1, 0.1]),
        _box_head([0.033, 0.033, 0.067, 0.067]),
    ]))
del _box_head
