# dBOT's ViT-B/16 Cascade Mask R-CNN on COCO (DOWNSTREAM.md of liuxingbin/dbot, run.sh
# cascade_coco_det: evaluation/object_detection/configs/cascade_rcnn/
# vit_base_giou_4conv1f_coco_3x.py with data.samples_per_gpu=2 lr_config.step=8,11
# runner.max_epochs=12 optimizer.paramwise_cfg.layer_decay_rate=0.75, on one node of
# 8 GPUs): AdamW lr 1e-4, betas (0.9, 0.999), weight decay 0.05, layer decay 0.75 over
# 12 blocks (BEiT's no-decay rule), drop path 0.2, 12 epochs with lr x0.1 at epochs 8 and
# 11, 500-iteration linear warm-up from 0.001, fp16, batch 16 (8 GPUs x 2), DETR
# multi-scale training augmentation, 1333x800 test.
#   bash tools/dist_train.sh \
#     configs/benchmarks/detection/dbot_cascade-mask-rcnn_vit-b-p16_fpn_8xb2-ms-1x_coco.py 8 \
#     --cfg-options model.backbone.checkpoint=work_dirs/dbot_vit-base-p16_32xb128-amp-coslr-1600e_in1k/backbone_mmdet.pth
_base_ = [
    './_base_/cascade-mask-rcnn_vit-b-p16_fpn.py',
    './_base_/coco-instance_detr-ms.py',
    'mmdet::_base_/default_runtime.py',
]
default_scope = 'mmdet'
custom_imports = dict(imports=['sdae_mm', 'sdae_mm.downstream.det'], allow_failed_imports=False)

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    # mmcv's 500-iteration warm-up: mmengine reaches end_factor at iteration end - 1
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=501),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1),
]
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75, num_layers=12, no_decay_rule='beit'))
# lr above is for 8 GPUs x 2 images; enable to rescale linearly for another batch size
auto_scale_lr = dict(enable=False, base_batch_size=16)
