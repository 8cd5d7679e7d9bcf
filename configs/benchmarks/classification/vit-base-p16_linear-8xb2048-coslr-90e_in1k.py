# Linear probing with MAE's paper batch size, 16,384 (LINPROBE.md of facebookresearch/mae:
# 512 x 32 GPUs; RC-MAE's scripts/linear_rc_mae_vit_base.sh: 2048 x 8): lr = 0.1 * 16384
# / 256 = 6.4. Everything else as the 8 x 512 config.
_base_ = ['./vit-base-p16_linear-8xb512-coslr-90e_in1k.py']

train_dataloader = dict(batch_size=2048)
lr = 0.1 * 2048 * 8 / 256
optim_wrapper = dict(optimizer=dict(lr=lr))
auto_scale_lr = dict(base_batch_size=16384)
