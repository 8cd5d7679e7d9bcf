# RC-MAE with ViT-B/16 (official rc_vit_base_patch16): an MAE student (no drop path,
# decoder 512-d x 8 blocks predicting 16x16x3 pixels, norm_pix targets) and an EMA teacher
# that is a whole MAE (encoder + decoder), starting as a copy of the student; loss =
# reconstruction + gamma (1.0) x consistency with the teacher's reconstruction.
model = dict(
    type='RCMAE',
    backbone=dict(
        type='MIMVisionTransformer', arch='b', img_size=224, patch_size=16,
        drop_path_rate=0., init_mode='mae', fixed_pos_embed=True),
    neck=dict(
        type='MIMDecoder', num_patches=196, in_channels=768, out_channels=16 * 16 * 3,
        embed_dims=512, num_layers=8, num_heads=16, mlp_ratio=4.),
    head=dict(
        type='RCMAEHead', norm_pix=True, patch_size=16, consistency_weight=1.0,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    teacher_init='student',
)
