"""Every detection config builds: model, layer-decay optimizer, data pipelines."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.optim import build_optim_wrapper

from sdae_mm.downstream.det import PlainViT, ViTDet

#: default scope of every test here (see tests/conftest.py)
DEFAULT_SCOPE = 'mmdet'

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCHMARKS = sorted(glob.glob(osp.join(ROOT, 'configs/benchmarks/detection/*.py')))
DEMOS = sorted(glob.glob(osp.join(ROOT, 'configs/demo/*mask-rcnn*.py')))
DIGITS = ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')

# what each config must say (the protocol tables of docs/transfer.md)
EXPECTED = {
    'mask-rcnn_vit-b-p16_fpn_16xb2-ms-1x_coco.py':
    dict(backbone='PlainViT', lr=3e-4, wd=0.05, rate=0.75, layers=12, milestones=[9, 11],
         epochs=12, batch=2),
    'mask-rcnn_vit-b-p16_fpn_8xb2-ms-3x_coco.py':
    dict(backbone='PlainViT', lr=1e-4, wd=0.05, rate=0.65, layers=12, milestones=[27, 33],
         epochs=36, batch=2),
    'vitdet_mask-rcnn_vit-b-p16_simplefpn_16xb4-lsj-100e_coco.py':
    dict(backbone='ViTDet', lr=1e-4, wd=0.1, rate=0.7, layers=12,
         milestones=[163889, 177546], iters=184375, batch=4, warmup=250),
}


def test_configs_are_found():
    assert {osp.basename(p) for p in BENCHMARKS} == set(EXPECTED)
    assert len(DEMOS) == 2


def _group_of(optim_wrapper, param):
    for group in optim_wrapper.optimizer.param_groups:
        if any(p is param for p in group['params']):
            return group
    raise AssertionError('parameter not in the optimizer')


def _build(cfg):
    from mmdet.registry import MODELS
    cfg.model.backbone.checkpoint = None
    model = MODELS.build(cfg.model)
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg['type'] = 'OptimWrapper'  # AmpOptimWrapper needs a GPU
    return model, build_optim_wrapper(model, optim_cfg)


@pytest.mark.parametrize('path', BENCHMARKS, ids=osp.basename)
def test_benchmark_config_builds(path):
    cfg = Config.fromfile(path)
    exp = EXPECTED[osp.basename(path)]
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports.imports == ['sdae_mm', 'sdae_mm.downstream.det']
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    assert cfg.train_dataloader.batch_size == exp['batch']
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.constructor == 'ViTLayerDecayOptimWrapperConstructor'
    sched = cfg.param_scheduler
    assert sched[1].milestones == exp['milestones'] and sched[1].gamma == 0.1
    assert sched[0].start_factor == 0.001 and sched[0].end == exp.get('warmup', 500)
    if 'epochs' in exp:
        assert cfg.train_cfg.max_epochs == exp['epochs']
    else:
        assert cfg.train_cfg.max_iters == exp['iters']
    assert cfg.model.backbone.checkpoint.endswith('.pth')

    model, optim = _build(cfg)
    backbone = model.backbone
    assert isinstance(backbone, PlainViT if exp['backbone'] == 'PlainViT' else ViTDet)
    assert backbone.num_layers == exp['layers'] and backbone.embed_dims == 768
    lr, rate, n = exp['lr'], exp['rate'], exp['layers']
    qkv_last = backbone.layers[n - 1].attn.qkv.weight
    g = _group_of(optim, qkv_last)
    assert g['lr'] == pytest.approx(lr * rate) and g['weight_decay'] == exp['wd']
    g = _group_of(optim, backbone.patch_embed.projection.weight)
    assert g['lr'] == pytest.approx(lr * rate**(n + 1))
    g = _group_of(optim, backbone.pos_embed)
    assert g['lr'] == pytest.approx(lr * rate**(n + 1)) and g['weight_decay'] == 0
    g = _group_of(optim, model.rpn_head.rpn_cls.weight)
    assert g['lr'] == pytest.approx(lr) and g['weight_decay'] == exp['wd']

    if exp['backbone'] == 'ViTDet':
        assert [i for i, layer in enumerate(backbone.layers)
                if layer.window_size == 0] == [2, 5, 8, 11]
        assert {layer.window_size for layer in backbone.layers} == {0, 14}
        assert backbone.layers[2].attn.rel_pos_h.shape == (127, 64)
        assert backbone.layers[0].attn.rel_pos_h.shape == (27, 64)
        assert backbone.pos_grid == (14, 14)
        assert _group_of(optim, backbone.layers[0].attn.rel_pos_h)['weight_decay'] == 0
        assert model.neck.scale_factors == (4.0, 2.0, 1.0, 0.5)
        assert type(model.roi_head.bbox_head).__name__ == 'Shared4Conv1FCBBoxHead'
        assert type(model.roi_head.bbox_head.shared_convs[0].norm).__name__ == 'LayerNorm2d'
        assert type(model.roi_head.mask_head.convs[0].norm).__name__ == 'LayerNorm2d'
        assert model.rpn_head.num_convs == 2
        assert [h.type for h in cfg.custom_hooks] == ['Fp16CompressionHook']
    else:
        assert backbone.out_indices == [3, 5, 7, 11]
        assert model.roi_head.bbox_head.num_shared_convs == 4
        assert type(model.roi_head.bbox_head.loss_bbox).__name__ == 'GIoULoss'
        assert isinstance(backbone.fpn1[1], torch.nn.SyncBatchNorm)


@pytest.mark.parametrize('path', BENCHMARKS, ids=osp.basename)
def test_benchmark_pipelines_run_on_a_coco_sample(path, demo_data):
    """The COCO train pipeline on one demo scene (COCO format); ViTDet pads to 1024."""
    from mmdet.datasets import CocoDataset
    from mmdet.registry import MODELS
    cfg = Config.fromfile(path)
    torch.manual_seed(0)
    import numpy as np
    np.random.seed(0)
    dataset = CocoDataset(
        data_root=osp.join(demo_data, 'scenes'),
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='img_dir/train/'),
        metainfo=dict(classes=DIGITS),
        pipeline=cfg.train_dataloader.dataset.pipeline,
        indices=4)
    samples = [dataset[i] for i in range(2)]
    for s in samples:
        assert s['inputs'].dim() == 3 and s['inputs'].shape[0] == 3
    test = Compose(cfg.test_dataloader.dataset.pipeline)
    item = test(dict(dataset.get_data_info(0)))
    assert max(item['inputs'].shape[1:]) in (1024, 1333) or min(item['inputs'].shape[1:]) == 800
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    batch = preprocessor(pseudo_collate(samples), training=True)
    if 'vitdet' in path:
        assert batch['inputs'].shape[-2:] == (1024, 1024)
        h, w = samples[0]['data_samples'].img_shape
        if h < 1024:  # padding is the zero of the normalised image (detectron2)
            assert torch.count_nonzero(batch['inputs'][0, :, h:]) == 0
    else:
        assert batch['inputs'].shape[-1] % 32 == 0


@pytest.mark.parametrize('path', DEMOS, ids=osp.basename)
def test_demo_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['sdae_mm', 'sdae_mm.downstream.det'],
                                      allow_failed_imports=False)
    assert cfg.model.backbone.checkpoint == 'work_dirs/demo/sdae/backbone_mmdet.pth'
    assert cfg.train_dataloader.dataset.data_root == 'data/demo/scenes/'
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
    assert cfg.val_evaluator.type == 'CocoMetric'
    model, optim = _build(cfg)
    assert model.backbone.embed_dims == 96 and model.backbone.num_layers == 6
    assert model.roi_head.bbox_head.num_classes == 10
    assert model.roi_head.mask_head.num_classes == 10
    out = model.backbone(torch.randn(1, 3, 128, 128))
    feats = model.neck(out)
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4]  # strides 4..32 at 128
    rate = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    g = _group_of(optim, model.backbone.layers[5].ffn.layers[1].weight)
    assert g['lr'] == pytest.approx(cfg.optim_wrapper.optimizer.lr * rate)
