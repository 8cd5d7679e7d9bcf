# ImageNet-1k pretraining data of the official SdAE code (main_pretrain.py): that of MAE
# (imagenet_bs128_mim.py: RandomResizedCrop(224, scale (0.2, 1), bicubic) + horizontal
# flip, ImageNet mean/std, an ImageFolder over data/imagenet/train, drop_last) with SdAE's
# multi-fold masking and 96 images per GPU.
_base_ = './imagenet_bs128_mim.py'

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
    dict(type='MultiFoldMaskGenerator', input_size=224, patch_size=16, mask_ratio=0.75,
         num_teacher_tokens=147, num_folds=3),
    dict(type='PackInputs', algorithm_keys=['ids_shuffle'], meta_keys=['img_path']),
]

train_dataloader = dict(batch_size=96, dataset=dict(pipeline=train_pipeline))
