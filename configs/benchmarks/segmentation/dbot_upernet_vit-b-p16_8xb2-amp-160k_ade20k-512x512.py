# dBOT's ViT-B/16 UperNet on ADE20K (DOWNSTREAM.md of liuxingbin/dbot, run.sh ade20k_seg:
# mae_segmentation's evaluation/mae_segmentation/configs/mae/
# upernet_mae_base_12_512_slide_160k_ade20k.py with optimizer_config.use_fp16=True
# optimizer.lr=1e-4 optimizer.paramwise_cfg.layer_decay_rate=0.65
# model.backbone.drop_path_rate=0.2): the MAE/BEiT protocol of the ViT-B config with
# drop path 0.2 instead of 0.1. 8 GPUs x 2 images, 160k iterations, AdamW lr 1e-4,
# wd 0.05, layer decay 0.65 (BEiT's no-decay rule), 1,500-iteration warm-up, poly decay,
# fp16, relative position bias learned from zero on the pretrained absolute position
# embedding, single-scale sliding-window test (512 crop, 341 stride).
#
#   bash tools/dist_train.sh \
#     configs/benchmarks/segmentation/dbot_upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/dbot_vit-base-p16_32xb128-amp-coslr-1600e_in1k/backbone_mmseg.pth
_base_ = './upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py'

model = dict(backbone=dict(drop_path_rate=0.2))
