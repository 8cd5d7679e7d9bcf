# The Mask R-CNN demo (mask-rcnn_vit-demo_fpn_1xb4-300iters_digit-scenes-128x128.py) on the
# schedule of `make demo`: 60 iterations of 4 scenes (240 images, 0.8 epoch of the 300
# training scenes) instead of 300, so that SdAE, MAE and random init each get a run within
# the demo's budget. Same model, data and optimizer; the warm-up (10 iterations) and the lr
# steps (x0.1 at 45 and 55: the 1x schedule's 9/12 and 11/12) are scaled with the run, one
# validation at the end.
_base_ = './mask-rcnn_vit-demo_fpn_1xb4-300iters_digit-scenes-128x128.py'

max_iters = 60
warmup_iters = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[45, 55],
         gamma=0.1),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters))
