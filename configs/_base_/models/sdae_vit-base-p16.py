# SdAE with ViT-B/16 (official mae_vit_base_patch16 student, vit_base_patch16 teacher):
# student drop path 0.25, decoder 512-d x 8 blocks predicting 768-d teacher features,
# teacher on 147 masked tokens in 3 folds, per-token normalised targets, cosine loss.
model = dict(
    type='SdAE',
    backbone=dict(
        type='MIMVisionTransformer', arch='b', img_size=224, patch_size=16,
        drop_path_rate=0.25, init_mode='mae', fixed_pos_embed=True),
    neck=dict(
        type='MIMDecoder', num_patches=196, in_channels=768, out_channels=768,
        embed_dims=512, num_layers=8, num_heads=16, mlp_ratio=4.),
    head=dict(
        type='FeatureDistillHead', norm_target=True, norm_eps=1e-6, unbiased_var=True,
        loss=dict(type='CosineDistanceLoss', dim=1)),
    num_teacher_tokens=147,
    num_folds=3,
    # official: the teacher is a timm ViT with its own random init, drop path 0
    teacher=dict(
        type='MIMVisionTransformer', arch='b', img_size=224, patch_size=16,
        drop_path_rate=0., init_mode='timm', fixed_pos_embed=False),
    teacher_init='random',
    # True: the student's and decoder's MLPs keep only their hidden pre-activation for the
    # backward pass and recompute GELU there: the same results with about 18 % fewer saved
    # activations (docs/speed.md); off by default until measured on a GPU
    recompute_gelu=False,
)
