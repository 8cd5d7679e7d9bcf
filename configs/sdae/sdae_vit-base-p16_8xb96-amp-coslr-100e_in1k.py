# SdAE ViT-B/16, 100 epochs: the authors' recipe (AbrahamYabo/SdAE issue #3):
#   --epochs 100 --warmup_epochs 20 --momentum_teacher 0.9 --momentum_teacher_final 0.95
#   --drop_path 0.15 (everything else as the 300-epoch recipe)
_base_ = ['./sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py']

max_epochs = 100
warmup_epochs = 20
model = dict(backbone=dict(drop_path_rate=0.15))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.9, end_momentum=0.95,
         update_interval='epoch', schedule_unit='epoch'),
]
