# Linear probing of a frozen pretrained ViT-B/16 on ImageNet-1k: the protocol of the
# official SdAE main_linprobe.py (MAE's, MoCo v3's LARS), at its default batch size:
#   --batch_size 512 x 8 GPUs --epochs 90 --blr 0.1 (lr = 0.1 * 4096 / 256 = 1.6)
#   --weight_decay 0 --warmup_epochs 10 --min_lr 0, cls token (global_pool=False) after the
#   pretrained final norm, BatchNorm1d(affine=False, eps=1e-6) before the linear head,
#   head weight trunc_normal(std=0.01), LARS (momentum 0.9, trust coefficient 0.001,
#   biases excluded from the trust ratio), cross-entropy without smoothing, AMP.
# MAE's paper protocol is 16,384 images per batch (lr 6.4):
# vit-base-p16_linear-8xb2048-coslr-90e_in1k.py.
#
#   bash tools/dist_train.sh configs/benchmarks/classification/vit-base-p16_linear-8xb512-coslr-90e_in1k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/sdae_vit-b_300e/backbone_mmpretrain.pth
_base_ = [
    './_base_/datasets/imagenet_bs512_linear-224.py',
    './_base_/default_runtime.py',
]

checkpoint = 'work_dirs/sdae_vit-b_300e/backbone_mmpretrain.pth'

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.,
        out_type='cls_token',
        final_norm=True,
        # everything frozen: patch embedding, tokens, 12 blocks and the final norm
        frozen_stages=12,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(type='ClsBatchNormNeck', input_features=768, affine=False, eps=1e-6),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01, bias=0.)]),
)

# lr = blr * total batch / 256
lr = 0.1 * 512 * 8 / 256
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='LARS', lr=lr, weight_decay=0., momentum=0.9, eta=0.001),
    # MoCo v3's LARS adapts only parameters with ndim > 1: the head bias takes plain
    # momentum SGD steps
    paramwise_cfg=dict(custom_keys={'head.fc.bias': dict(lars_exclude=True)}))

max_epochs = 90
warmup_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(logger=dict(type='LoggerHook', interval=10))

auto_scale_lr = dict(base_batch_size=4096, enable=True)
