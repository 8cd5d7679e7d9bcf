# Runtime shared by the pretraining configs (mmpretrain scope; sdae_mm registers into it).
default_scope = 'mmpretrain'
custom_imports = dict(imports=['sdae_mm'], allow_failed_imports=False)
# mmengine's Runner whose auto_scale_lr counts gradient accumulation, as the official
# eff_batch_size = batch_size * accum_iter * world_size does (sdae_mm/engine/runner.py);
# tools/train.py uses it for every config that names no other runner.
runner_type = 'RecipeRunner'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=20, max_keep_ckpts=3, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # RNG states in checkpoints: a resumed run takes the same next step (sdae_mm)
    rng_state=dict(type='RNGStateHook'),
)

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_processor = dict(window_size=10, custom_cfg=[dict(data_src='', method='mean', window_size='global')])
log_level = 'INFO'
load_from = None
resume = False
# Official code: seed 0 + rank.
randomness = dict(seed=0, diff_rank_seed=True)
