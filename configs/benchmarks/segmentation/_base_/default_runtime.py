# mmseg runtime for sdae-mm segmentation transfer (mmseg 1.2.2 configs/_base_/default_runtime.py
# plus the sdae-mm imports that register SdMIMSegViT and the layer-decay constructor).
default_scope = 'mmseg'
custom_imports = dict(imports=['sdae_mm', 'sdae_mm.downstream.seg'], allow_failed_imports=False)

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False

# used by the -ms-flip test configs (and mmseg's tools/test.py --tta)
tta_model = dict(type='SegTTAModel')
