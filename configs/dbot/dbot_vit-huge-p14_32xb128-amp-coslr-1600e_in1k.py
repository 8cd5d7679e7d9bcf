# dBOT ViT-H/14, 1600 epochs in two stages (PRETRAIN.md of liuxingbin/dbot):
#   --batch_size 128 (x 32 GPUs) --epochs 1600 --norm_feature_loss --mask_ratio 0.75
#   --stage_epochs 0 800 1600 --depth 32 32 32 --init_teacher_encoder_depth 0 --sdpr 0.3
#   --blr 1.5e-4 --weight_decay 0.05 (no --clip_grad)
_base_ = ['./dbot_vit-base-p16_32xb128-amp-coslr-1600e_in1k.py']

model = dict(
    backbone=dict(arch='h', patch_size=14, drop_path_rate=0.3),
    # --sdpr 0.3: encoder and decoder
    neck=dict(num_patches=256, in_channels=1280, out_channels=1280, drop_path_rate=0.3),
    teacher=dict(arch='h', patch_size=14),
    teacher_depths=(0, 32))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomPatchMaskGenerator', input_size=224, patch_size=14, mask_ratio=0.75),
    dict(type='PackInputs', algorithm_keys=['ids_shuffle'], meta_keys=['img_path']),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(clip_grad=None)
