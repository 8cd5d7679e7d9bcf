# dBOT with ViT-B/16 (official mae_vit_base_patch16 student and teacher): student drop path
# 0.2 (--sdpr) in the encoder *and* the decoder (official models_mae.py builds both block
# lists with linspace(0, drop_path_rate, depth)), decoder 512-d x 8 blocks predicting the
# 768-d teacher features of every position (cls included), a teacher on the whole image
# without its final norm (--tlayernorm 0), per-token normalised targets
# (--norm_feature_loss), Smooth L1 with beta 2.
model = dict(
    type='DBOT',
    backbone=dict(
        type='MIMVisionTransformer', arch='b', img_size=224, patch_size=16,
        drop_path_rate=0.2, init_mode='mae', fixed_pos_embed=True),
    neck=dict(
        type='MIMDecoder', num_patches=196, in_channels=768, out_channels=768,
        embed_dims=512, num_layers=8, num_heads=16, mlp_ratio=4., drop_path_rate=0.2),
    head=dict(
        type='MaskedFeatureDistillHead', norm_target=True, norm_eps=1e-6, unbiased_var=True,
        loss=dict(type='MaskedSmoothL1Loss', beta=2.0)),
    # official --init_teacher_encoder_depth 12 then --depth 12 12 12
    teacher_depths=(12, 12),
    teacher_final_norm=False,
    loss_on_cls=True,
    # official: the teacher is a copy of the student, drop path 0 (--tdpr 0)
    teacher=dict(
        type='MIMVisionTransformer', arch='b', img_size=224, patch_size=16,
        drop_path_rate=0., init_mode='mae', fixed_pos_embed=True),
    teacher_init='student',
)
