# SdAE / dBOT / RC-MAE / MAE ViT-B/16 -> UperNet on ADE20K, 512x512, 160k iterations,
# 8 GPUs x 2 images, AMP. The MAE/BEiT protocol as in mmseg 1.2.2
# configs/mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py (48.1 mIoU for MAE ViT-B
# 1600 epochs; SdAE reports 48.6): see docs/transfer.md for every value and its source.
#
#   bash tools/dist_train.sh \
#     configs/benchmarks/segmentation/upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/sdae_vit-b_300e/backbone_mmseg.pth
_base_ = [
    './_base_/models/upernet_vit-b-p16.py',
    './_base_/datasets/ade20k_512x512.py',
    './_base_/schedules/adamw-layer-decay_amp-160k.py',
    './_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
