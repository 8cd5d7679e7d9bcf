# Mask R-CNN + FPN, ViT-B/16, 1x schedule with multi-scale training: the COCO protocol of
# CAE (lxtGH/CAE, config vit_base_giou_4conv1f_coco_maskrcnn_1x_*; 16 GPUs x 2 images),
# which SdAE's COCO number (48.9 box AP, ViT-B, 300 pretraining epochs) is compared
# against. Values and their sources: docs/transfer.md (detection).
#   AdamW lr 3e-4, betas (0.9, 0.999), weight decay 0.05, layer decay 0.75 (12 blocks),
#   drop path 0.2, 12 epochs with lr x0.1 at epochs 9 and 11, 500-iteration linear
#   warm-up from 0.001, mixed precision, batch 32.
# Train on 16 GPUs (2 nodes x 8; on one node of 8 the batch halves), e.g. with Slurm:
#   GPUS=16 bash tools/slurm_train.sh PARTITION maskrcnn \
#     configs/benchmarks/detection/mask-rcnn_vit-b-p16_fpn_16xb2-ms-1x_coco.py \
#     --cfg-options model.backbone.checkpoint=work_dirs/sdae_vit-b_300e/backbone_mmdet.pth
# or with torchrun on each node (NODE_RANK=1 on the second; docs/get_started.md):
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 bash tools/dist_train.sh \
#     configs/benchmarks/detection/mask-rcnn_vit-b-p16_fpn_16xb2-ms-1x_coco.py 8 \
#     --cfg-options model.backbone.checkpoint=work_dirs/sdae_vit-b_300e/backbone_mmdet.pth
_base_ = [
    './_base_/mask-rcnn_vit-b-p16_fpn.py',
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
        milestones=[9, 11],
        gamma=0.1),
]
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75, num_layers=12, no_decay_rule='beit'))
# lr above is for 16 GPUs x 2 images; enable to rescale linearly for another batch size
auto_scale_lr = dict(enable=False, base_batch_size=32)
