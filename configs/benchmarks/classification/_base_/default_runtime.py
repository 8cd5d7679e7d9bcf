# mmpretrain runtime of the classification transfer configs (mmpretrain 1.2.0's
# configs/_base_/default_runtime.py), plus sdae_mm's imports (the layer-decay constructor)
# and the RNG states in checkpoints (an interrupted fine-tune resumes bit for bit).
default_scope = 'mmpretrain'
custom_imports = dict(imports=['sdae_mm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # the official loops save every 20 epochs and the last one
    checkpoint=dict(type='CheckpointHook', interval=20, max_keep_ckpts=3, save_last=True,
                    save_best='accuracy/top1', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
    rng_state=dict(type='RNGStateHook'),
)

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
# official: seed 0 + rank
randomness = dict(seed=0, diff_rank_seed=True)
