# UperNet on a ViT-B/16 for sdae-mm checkpoints: mmseg 1.2.2 configs/_base_/models/upernet_mae.py
# with the backbone/neck/head values of configs/mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py
# (MAE/BEiT protocol). The backbone is mmseg's MAE ViT (relative position bias learned from
# zero on top of the pretrained absolute position embedding, layer scale starting at 1.0)
# whose init_weights loads a `tools/convert_checkpoint.py --to mmseg` checkpoint:
#   --cfg-options model.backbone.init_cfg.checkpoint=<converted .pth>
norm_cfg = dict(type='SyncBN', requires_grad=True)  # reverted to BN when not distributed
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512),
    # pad test images whose short side is below the crop (never the case for ADE20K at
    # scale (2048, 512); needed by the multi-scale test): the ViT only takes crop_size
    test_cfg=dict(size=(512, 512)))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='SdMIMSegViT',
        img_size=(512, 512),
        patch_size=16,
        in_channels=3,
        embed_dims=768,
        num_layers=12,
        num_heads=12,
        mlp_ratio=4,
        out_indices=(3, 5, 7, 11),  # blocks 4/6/8/12
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6),
        act_cfg=dict(type='GELU'),
        norm_eval=False,
        final_norm=False,
        init_values=1.0,
        init_cfg=dict(type='Pretrained', checkpoint='')),
    # 1/16 features -> 1/4, 1/8, 1/16, 1/32 (deconv+BN+GELU+deconv, deconv, identity, max-pool)
    neck=dict(type='Feature2Pyramid', embed_dim=768, rescales=[4, 2, 1, 0.5],
              norm_cfg=norm_cfg),
    decode_head=dict(
        type='UPerHead',
        in_channels=[768, 768, 768, 768],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=768,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=768,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
