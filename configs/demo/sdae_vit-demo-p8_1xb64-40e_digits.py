# SdAE on the embedded digits for 40 epochs (880 steps): the pretraining of `make demo`,
# where it shares the 15-minute budget with the MAE baseline (same 40 epochs, same data and
# optimizer: mae_vit-demo-p8_1xb64-40e_digits.py) and fifteen transfer runs. Everything
# else is the 60-epoch demo recipe.
_base_ = './sdae_vit-demo-p8_1xb64-60e_digits.py'

max_epochs = 40
warmup_epochs = 4
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
