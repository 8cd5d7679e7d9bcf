# ViTDet, Mask R-CNN, ViT-B/16, 100 epochs of LSJ at 1024: detectron2 projects/ViTDet
# configs/COCO/mask_rcnn_vitdet_b_100ep.py (MAE ViT-B: 51.6 box AP / 45.9 mask AP).
#   AdamW lr 1e-4, betas (0.9, 0.999), weight decay 0.1, layer decay 0.7 (12 blocks),
#   batch 64 (16 GPUs x 4), 184,375 iterations (100 epochs of 118k images), lr x0.1 at
#   163,889 and 177,546 (88 and 96 epochs), 250-iteration linear warm-up from 0.001,
#   mixed precision with fp16 gradient all-reduce, evaluation every 5,000 iterations.
# Values and their sources: docs/transfer.md (detection).
# Train on 16 GPUs (2 nodes x 8; on one node of 8 the batch halves), e.g. with Slurm:
#   GPUS=16 bash tools/slurm_train.sh PARTITION vitdet \
#     configs/benchmarks/detection/vitdet_mask-rcnn_vit-b-p16_simplefpn_16xb4-lsj-100e_coco.py \
#     --cfg-options model.backbone.checkpoint=work_dirs/sdae_vit-b_300e/backbone_mmdet.pth
# or with torchrun on each node (NODE_RANK=1 on the second; docs/get_started.md):
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 bash tools/dist_train.sh \
#     configs/benchmarks/detection/vitdet_mask-rcnn_vit-b-p16_simplefpn_16xb4-lsj-100e_coco.py 8 \
#     --cfg-options model.backbone.checkpoint=work_dirs/sdae_vit-b_300e/backbone_mmdet.pth
_base_ = [
    './_base_/vitdet_mask-rcnn_vit-b-p16_simplefpn.py',
    './_base_/coco-instance_lsj-1024.py',
    'mmdet::_base_/default_runtime.py',
]
default_scope = 'mmdet'
custom_imports = dict(imports=['sdae_mm', 'sdae_mm.downstream.det'], allow_failed_imports=False)

max_iters = 184375
interval = 5000
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=interval,
    dynamic_intervals=[(max_iters // interval * interval + 1, max_iters)])
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    # detectron2's 250-iteration warm-up: mmengine reaches end_factor at iteration end - 1
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=251),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[163889, 177546],
        gamma=0.1),
]
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    constructor='ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7, num_layers=12, no_decay_rule='vitdet'))
custom_hooks = [dict(type='Fp16CompressionHook')]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=interval, save_last=True,
        max_keep_ckpts=5))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
# lr above is for 64 images per iteration; enable to rescale linearly for another batch
auto_scale_lr = dict(enable=False, base_batch_size=64)
