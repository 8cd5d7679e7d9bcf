# Multi-scale (0.5-1.75 x (2048, 512)) + flip test of the ViT-B/16 UperNet model; test only:
#   .venv/bin/python tools/test.py \
#     configs/benchmarks/segmentation/upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512-ms-flip.py \
#     work_dirs/upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512/iter_160000.pth
# The segmentor is wrapped in mmseg's SegTTAModel (softmax scores averaged over the 12
# views) here, so no `--tta` flag is needed. Each view is predicted with 512x512 sliding
# windows; views whose short side is below 512 are zero-padded to 512 (the data
# preprocessor's test_cfg), where BEiT's original test resized them up to 512 instead.
_base_ = './upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py'

model = dict(_delete_=True, type='SegTTAModel', module={{_base_.model}})
val_dataloader = dict(dataset=dict(pipeline={{_base_.tta_pipeline}}))
test_dataloader = val_dataloader
