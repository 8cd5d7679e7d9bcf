# Mask R-CNN + FPN on a plain ViT-B/16 with the multi-scale adapter (blocks 4/6/8/12 ->
# deconv x4, deconv x2, identity, max-pool x2), the COCO protocol of CAE (lxtGH/CAE
# downstream_tasks/detection, built on bytedance/ibot evaluation/object_detection):
# 4conv-1fc box head with SyncBN and a GIoU loss (weight 10) on decoded boxes, an RPN that
# keeps 2,000 proposals per image for training (CAE's _base_/models/mask_rcnn_vit_fpn.py
# rpn_proposal; mmdet's default is 1,000), the rest as mmdet's Mask R-CNN R50-FPN. The
# backbone loads a converted checkpoint (tools/convert_checkpoint.py --to mmdet) in
# init_weights.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

# Converted backbone weights; override with
#   --cfg-options model.backbone.checkpoint=PATH   (None: random initialisation)
pretrained = 'work_dirs/sdae_vit-b_300e/backbone_mmdet.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)

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
    roi_head=dict(
        bbox_head=dict(
            _delete_=True,
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
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            norm_cfg=norm_cfg,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0))),
    train_cfg=dict(rpn_proposal=dict(nms_pre=2000, max_per_img=2000)))
