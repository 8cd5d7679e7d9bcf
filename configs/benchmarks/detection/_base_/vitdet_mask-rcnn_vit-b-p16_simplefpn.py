# ViTDet Mask R-CNN with a ViT-B/16 backbone, as detectron2 projects/ViTDet
# (configs/COCO/mask_rcnn_vitdet_b_100ep.py):
#   backbone: windows of 14 with global attention in blocks 3/6/9/12 (0-based 2/5/8/11),
#     decomposed relative positions, absolute position embedding of the 224-px
#     pretraining (14x14) interpolated to the 64x64 map of a 1024 input, drop path 0.1,
#     no final norm;
#   neck: simple feature pyramid, scales 4/2/1/0.5 of the stride-16 map plus a stride-2
#     subsampling (P6), LayerNorm convolutions, 256 channels;
#   heads: RPN with 2 convolutions, box head 4 convs (LN) + 1 fc (1024), mask head
#     4 convs with LN.
# Inputs are padded to 1024x1024 with zeros after normalisation (detectron2
# square_pad=1024): pad_size_divisor=1024 in the data preprocessor, train and test.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

# Converted backbone weights; override with
#   --cfg-options model.backbone.checkpoint=PATH   (None: random initialisation)
pretrained = 'work_dirs/sdae_vit-b_300e/backbone_mmdet.pth'
norm_cfg = dict(type='LN2d', eps=1e-6, requires_grad=True)

model = dict(
    data_preprocessor=dict(pad_size_divisor=1024, pad_value=0, pad_mask=True),
    backbone=dict(
        _delete_=True,
        type='ViTDet',
        arch='base',
        img_size=1024,
        patch_size=16,
        pretrain_img_size=224,
        window_size=14,
        global_attn_indexes=(2, 5, 8, 11),
        use_rel_pos=True,
        drop_path_rate=0.1,
        qkv_bias=True,
        norm_cfg=dict(type='LN', eps=1e-6),
        checkpoint=pretrained),
    neck=dict(
        _delete_=True,
        type='SimpleFPN',
        in_channels=768,
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        num_outs=5,
        norm_cfg=norm_cfg),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))
