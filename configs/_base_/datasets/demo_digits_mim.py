# Pretraining data of the CPU demos: the embedded digits (data/demo/cls/train, 64x64 RGB,
# built by tools/prepare_demo_data.py), the official SdAE augmentation at 64 px, and a
# mask generator over the 8x8 grid of 8-px patches. MAE, SdAE, dBOT and RC-MAE demos share
# this file, so the four methods see identical inputs.
dataset_type = 'CustomDataset'
data_root = 'data/demo/cls'
img_size = 64
patch_size = 8

data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

train_pipeline = [
    # each sample's crop, flip and mask from a seed of (run seed, epoch, index): the same
    # augmentations whatever the workers, and after a resume (sdae_mm SeededSampler)
    dict(type='SeedPerSample'),
    # digits fill the whole image: crops of 35-100 % keep them legible at 64 px
    dict(type='DecodeRandomResizedCrop', scale=img_size, crop_ratio_range=(0.35, 1.0),
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomPatchMaskGenerator', input_size=img_size, patch_size=patch_size,
         mask_ratio=0.75),
    dict(type='PackInputs', algorithm_keys=['ids_shuffle'], meta_keys=['img_path']),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='train',
        with_label=False,
        pipeline=train_pipeline))
