# dBOT ViT-L/16, 1600 epochs in two stages (PRETRAIN.md of liuxingbin/dbot):
#   --batch_size 128 (x 32 GPUs) --epochs 1600 --norm_feature_loss --mask_ratio 0.75
#   --stage_epochs 0 800 1600 --depth 24 24 24 --init_teacher_encoder_depth 0 --sdpr 0.2
#   --blr 1.5e-4 --weight_decay 0.05 (no --clip_grad)
# The first teacher has no blocks: its output is the patch embedding plus the position
# embedding of the (randomly initialised) student copy.
_base_ = ['./dbot_vit-base-p16_32xb128-amp-coslr-1600e_in1k.py']

model = dict(
    backbone=dict(arch='l', drop_path_rate=0.2),
    # --sdpr 0.2: encoder and decoder
    neck=dict(in_channels=1024, out_channels=1024, drop_path_rate=0.2),
    teacher=dict(arch='l'),
    teacher_depths=(0, 24))

optim_wrapper = dict(clip_grad=None)
