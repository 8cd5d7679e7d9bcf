# End-to-end fine-tuning of a pretrained ViT-B/16 on ImageNet-1k: the recipe of the SdAE
# authors (README of AbrahamYabo/SdAE + main_finetune.py defaults), which is MAE's ViT-B
# recipe and RC-MAE's (scripts/finetune_rc_mae_base.sh):
#   --batch_size 128 x 8 GPUs --epochs 100 --blr 5e-4 (lr = blr * 1024 / 256 = 2e-3)
#   --layer_decay 0.65 --weight_decay 0.05 --drop_path 0.1 --warmup_epochs 5
#   --min_lr 1e-6 --smoothing 0.1 --mixup 0.8 --cutmix 1.0 --reprob 0.25
#   --aa rand-m9-mstd0.5-inc1, global average pooling + LayerNorm (fc_norm), AMP.
# Deviations: docs/fidelity.md, "Classification transfer".
#
#   .venv/bin/python tools/convert_checkpoint.py work_dirs/sdae_vit-b_300e/epoch_300.pth \
#       work_dirs/sdae_vit-b_300e/backbone_mmpretrain.pth --to mmpretrain
#   bash tools/dist_train.sh configs/benchmarks/classification/vit-base-p16_8xb128-coslr-100e_in1k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/sdae_vit-b_300e/backbone_mmpretrain.pth
_base_ = [
    './_base_/datasets/imagenet_bs128_finetune-224.py',
    './_base_/default_runtime.py',
]

# a converted backbone (tools/convert_checkpoint.py --to mmpretrain: no prefix)
checkpoint = 'work_dirs/sdae_vit-b_300e/backbone_mmpretrain.pth'

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        # official global_pool=True: mean of the patch tokens (cls token excluded), then
        # a new LayerNorm (fc_norm = our ln2); the pretrained final norm is not used
        out_type='avg_featmap',
        final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        # with mixup/cutmix the label smoothing goes into the mixed soft targets, as in
        # timm's Mixup(label_smoothing=0.1) + SoftTargetCrossEntropy
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        # official: trunc_normal_(head.weight, std=2e-5), bias 0
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5, bias=0.)]),
    # timm Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5,
    # mode='batch'): one of the two per batch, with equal probability
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)

# lr = blr * total batch / 256
lr = 5e-4 * 128 * 8 / 256
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    # layer-wise lr decay 0.65 over the 12 blocks (util/lr_decay.py); no weight decay on
    # 1-D parameters (biases, norms), pos_embed and cls_token (MAE's param_groups_lrd);
    # no gradient clipping
    constructor='ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65, num_layers=12, no_decay_rule='mae'))

max_epochs = 100
warmup_epochs = 5
min_lr = 1e-6
# per-iteration linear warm-up from 0 then half-cycle cosine to min_lr (util/lr_sched.py);
# officially every group's lr (min_lr included) is scaled by its layer-decay factor, hence
# a ratio rather than an absolute eta_min
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=min_lr / lr,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# lr above is for 8 GPUs x 128 images; other totals scale it (official blr rule)
auto_scale_lr = dict(base_batch_size=1024, enable=True)
