# The MAE baseline of `make demo`: mae_vit-demo-p8_1xb64-40e_digits.py for 60 epochs
# (1,320 steps), the schedule of the SdAE demo (sdae_vit-demo-p8_1xb64-60e_digits.py), so
# that the two pretrainings compared in the demo's table differ only in the method.
_base_ = './mae_vit-demo-p8_1xb64-40e_digits.py'

max_epochs = 60
warmup_epochs = 4
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
