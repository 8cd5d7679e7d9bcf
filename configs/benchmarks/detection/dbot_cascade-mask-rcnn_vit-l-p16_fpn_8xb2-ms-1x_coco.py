# dBOT's ViT-L/16 Cascade Mask R-CNN on COCO (DOWNSTREAM.md of liuxingbin/dbot, run.sh
# cascade_coco_det: evaluation/object_detection/configs/cascade_rcnn/
# vit_large_giou_4conv1f_coco_3x.py with data.samples_per_gpu=2 lr_config.step=8,11
# runner.max_epochs=12 optimizer.paramwise_cfg.layer_decay_rate=0.75, one node of
# 8 GPUs): the ViT-B recipe with features of blocks 8/12/16/24, layer decay 0.75 over 24
# blocks, drop path 0.2, AdamW lr 1e-4.
#   bash tools/dist_train.sh \
#     configs/benchmarks/detection/dbot_cascade-mask-rcnn_vit-l-p16_fpn_8xb2-ms-1x_coco.py 8 \
#     --cfg-options model.backbone.checkpoint=work_dirs/dbot_vit-large-p16_32xb128-amp-coslr-1600e_in1k/backbone_mmdet.pth
_base_ = './dbot_cascade-mask-rcnn_vit-b-p16_fpn_8xb2-ms-1x_coco.py'

model = dict(
    backbone=dict(
        arch='large',
        out_indices=(7, 11, 15, 23),
        checkpoint='work_dirs/dbot_vit-large-p16_32xb128-amp-coslr-1600e_in1k/'
        'backbone_mmdet.pth'),
    neck=dict(in_channels=[1024, 1024, 1024, 1024]))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75, num_layers=24))
