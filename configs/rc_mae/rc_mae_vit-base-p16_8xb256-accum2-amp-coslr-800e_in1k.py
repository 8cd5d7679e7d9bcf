# RC-MAE ViT-B/16, 800 epochs (scripts/pretrain_rc_mae_vit_base_800ep.sh): as the
# 1600-epoch recipe with --epochs 800.
_base_ = ['./rc_mae_vit-base-p16_8xb256-accum2-amp-coslr-1600e_in1k.py']

max_epochs = 800
warmup_epochs = 40
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
