# The UperNet demo (upernet_vit-demo_1xb8-300iters_digit-scenes-128x128.py) on the schedule
# of `make demo`: 60 iterations of 8 scenes (1.6 epochs of the 300 training scenes) instead
# of 300, so that SdAE, MAE and random init each get a run within the demo's budget. Same
# model, data and optimizer; the warm-up (10 iterations) and the poly decay are scaled with
# the run, one validation at the end.
_base_ = './upernet_vit-demo_1xb8-300iters_digit-scenes-128x128.py'

max_iters = 60
warmup_iters = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=warmup_iters, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters))
