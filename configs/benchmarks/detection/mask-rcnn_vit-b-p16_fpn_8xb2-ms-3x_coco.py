# Mask R-CNN + FPN, ViT-B/16, 3x schedule with multi-scale training. No SdAE/CAE/iBOT
# number uses a 3x Mask R-CNN; the optimisation values are those of iBOT's released 3x
# config (bytedance/ibot evaluation/object_detection/configs/cascade_rcnn/
# vit_base_giou_4conv1f_coco_3x.py, written for Cascade Mask R-CNN, 8 GPUs x 2 images):
#   AdamW lr 1e-4, weight decay 0.05, layer decay 0.65, drop path 0.2, 36 epochs with lr
#   x0.1 at epochs 27 and 33, 500-iteration warm-up, mixed precision, batch 16.
# Model and data as the 1x config (CAE's Mask R-CNN head, DETR multi-scale augmentation).
_base_ = './mask-rcnn_vit-b-p16_fpn_16xb2-ms-1x_coco.py'

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    # mmcv's 500-iteration warm-up: mmengine reaches end_factor at iteration end - 1
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=501),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1),
]
optim_wrapper = dict(
    optimizer=dict(lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.65, num_layers=12, no_decay_rule='beit'))
auto_scale_lr = dict(enable=False, base_batch_size=16)
