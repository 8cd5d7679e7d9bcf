# ImageNet-1k pretraining data of the official MAE, dBOT and RC-MAE code (main_pretrain.py /
# run_pretrain.py): RandomResizedCrop(224, scale (0.2, 1), bicubic) + horizontal flip,
# ImageNet mean/std, an ImageFolder over data/imagenet/train, drop_last, and MAE's random
# patch masking (75 %) drawn in the pipeline. 128 images per GPU (dBOT); recipes override it.
dataset_type = 'CustomDataset'
data_root = 'data/imagenet/'

data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

train_pipeline = [
    # each sample's crop, flip and mask from a seed of (run seed, epoch, index): the same
    # augmentations whatever the workers, and after a resume (sdae_mm SeededSampler)
    dict(type='SeedPerSample'),
    # LoadImageFromFile + RandomResizedCrop in one: libjpeg-turbo (simplejpeg) decodes JPEGs
    # at 1/2-1/8 scale when the crop is over twice the output, torch's antialiased bicubic
    # resizes full-size crops (exact=True: torchvision's pixels; docs/speed.md)
    dict(type='DecodeRandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0),
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomPatchMaskGenerator', input_size=224, patch_size=16, mask_ratio=0.75),
    dict(type='PackInputs', algorithm_keys=['ids_shuffle'], meta_keys=['img_path']),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='train',
        with_label=False,
        pipeline=train_pipeline))
