# RC-MAE ViT-S/16, 1600 epochs (scripts/pretrain_rc_mae_vit_small_1600ep.sh):
#   --model rc_vit_small_patch16 (384-d x 12 blocks, 6 heads; decoder 256-d x 4 blocks,
#   8 heads) --batch_size 512 --accum_iter 1 --epochs 1600 --warmup_epochs 40
#   --norm_pix_loss --mask_ratio 0.75 --blr 1.5e-4 --weight_decay 0.05 (gamma 1.0 default)
_base_ = ['./rc_mae_vit-base-p16_8xb256-accum2-amp-coslr-1600e_in1k.py']

# mmpretrain's 'deit-s' is this ViT-S (384-d, 12 blocks, 6 heads, MLP 1536); its 's' is
# the older 768-d x 8 ViT-S, not the one of MAE-style code.
model = dict(
    backbone=dict(arch='deit-s'),
    neck=dict(in_channels=384, embed_dims=256, num_layers=4, num_heads=8))
train_dataloader = dict(batch_size=512)
optim_wrapper = dict(accumulative_counts=1)
