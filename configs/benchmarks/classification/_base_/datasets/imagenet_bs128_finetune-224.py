# ImageNet-1k fine-tuning data of the official SdAE/MAE code (util/datasets.py:
# timm.data.create_transform(is_training=True, ...) with main_finetune.py's defaults), in
# mmpretrain transforms (the same as mmpretrain's MAE fine-tuning config):
#   train: RandomResizedCrop 224 (scale 0.08-1, ratio 3/4-4/3, bicubic), horizontal flip,
#          RandAugment 'rand-m9-mstd0.5-inc1' (2 ops, magnitude 9 of 10, std 0.5,
#          timm's increasing policies, fill = ImageNet mean), ImageNet mean/std,
#          RandomErasing p=0.25 'pixel' mode (per-pixel normal noise), 1 box,
#          area 2-33 %, aspect 0.3-3.3
#   test:  Resize short side 256 (bicubic) + CenterCrop 224 (crop_pct 0.875)
# Mixup/CutMix are batch augmentations: model.train_cfg.augments.
# data/imagenet/{train,val}/<wnid>/*.JPEG (ImageFolder layout; meta/{train,val}.txt
# annotation files are used instead when present).
dataset_type = 'ImageNet'
data_root = 'data/imagenet'
data_preprocessor = dict(
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

bgr_mean = data_preprocessor['mean'][::-1]
bgr_std = data_preprocessor['std'][::-1]

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[round(x) for x in bgr_mean[::-1]], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=bgr_mean, fill_std=bgr_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val',
                 pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
