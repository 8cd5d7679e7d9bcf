"""Every detection config builds: model, layer-decay optimizer, data pipelines."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS

from sdae_mm.downstream.det import PlainViT, ViTDet

#: default scope of every test here (see tests/conftest.py)
DEFAULT_SCOPE = 'mmdet'

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCHMARKS = sorted(glob.glob(osp.join(ROOT, 'configs/benchmarks/detection/*.py')))
DEMOS = sorted(glob.glob(osp.join(ROOT, 'configs/demo/*mask-rcnn*.py')))
DIGITS = ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')

# the official recipe of each config (docs/fidelity.md, "Effective recipes: transfer
# protocols"): total batch on the declared GPU count, lr, weight decay, layer decay and
# no-decay rule, drop path, schedule
EXPECTED = {
    'mask-rcnn_vit-b-p16_fpn_16xb2-ms-1x_coco.py':
    dict(backbone='PlainViT', lr=3e-4, wd=0.05, rate=0.75, layers=12, milestones=[9, 11],
         epochs=12, gpus=16, batch=2, rule='beit', drop_path=0.2, proposals=2000),
    'mask-rcnn_vit-b-p16_fpn_8xb2-ms-3x_coco.py':
    dict(backbone='PlainViT', lr=1e-4, wd=0.05, rate=0.65, layers=12, milestones=[27, 33],
         epochs=36, gpus=8, batch=2, rule='beit', drop_path=0.2, proposals=2000),
    'dbot_cascade-mask-rcnn_vit-b-p16_fpn_8xb2-ms-1x_coco.py':
    dict(backbone='PlainViT', lr=1e-4, wd=0.05, rate=0.75, layers=12, milestones=[8, 11],
         epochs=12, gpus=8, batch=2, rule='beit', drop_path=0.2, proposals=2000),
    'dbot_cascade-mask-rcnn_vit-l-p16_fpn_8xb2-ms-1x_coco.py':
    dict(backbone='PlainViT', lr=1e-4, wd=0.05, rate=0.75, layers=24, milestones=[8, 11],
         epochs=12, gpus=8, batch=2, rule='beit', drop_path=0.2, proposals=2000,
         dims=1024, outs=[7, 11, 15, 23]),
    'vitdet_mask-rcnn_vit-b-p16_simplefpn_16xb4-lsj-100e_coco.py':
    dict(backbone='ViTDet', lr=1e-4, wd=0.1, rate=0.7, layers=12,
         milestones=[163889, 177546], iters=184375, gpus=16, batch=4, warmup=250,
         rule='vitdet', drop_path=0.1, proposals=1000),
}


def test_configs_are_found():
    assert {osp.basename(p) for p in BENCHMARKS} == set(EXPECTED)
    assert len(DEMOS) == 3  # FPN 300 and 60 (make demo) iterations, ViTDet


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


def _drop_path_per_block(backbone):
    if isinstance(backbone, ViTDet):
        return [getattr(layer.drop_path, 'drop_prob', 0.) for layer in backbone.layers]
    return [layer.ffn.dropout_layer.drop_prob for layer in backbone.layers]


def _official_lr(base, it, epoch, exp):
    """lr of mmcv 0.x's step policy with linear warm-up (CAE, iBOT, dBOT) or detectron2's
    WarmupParamScheduler over MultiStepParamScheduler (ViTDet), written out."""
    step = epoch if 'epochs' in exp else it
    regular = base * 0.1**sum(step >= m for m in exp['milestones'])
    warmup = exp.get('warmup', 500)
    if it >= warmup:
        return regular
    return regular * (1 - (1 - it / warmup) * (1 - 0.001))


@pytest.mark.parametrize('path', BENCHMARKS, ids=osp.basename)
def test_benchmark_config_builds(path):
    cfg = Config.fromfile(path)
    exp = EXPECTED[osp.basename(path)]
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports.imports == ['sdae_mm', 'sdae_mm.downstream.det']
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    # the name declares the GPUs and the per-GPU batch; the lr is not rescaled on them
    gpus, batch = re.search(r'_(\d+)xb(\d+)-', osp.basename(path)).groups()
    assert (int(gpus), int(batch)) == (exp['gpus'], exp['batch'])
    assert cfg.train_dataloader.batch_size == exp['batch']
    assert cfg.auto_scale_lr.enable is False
    assert cfg.auto_scale_lr.base_batch_size == exp['gpus'] * exp['batch']
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.constructor == 'ViTLayerDecayOptimWrapperConstructor'
    assert cfg.optim_wrapper.paramwise_cfg.no_decay_rule == exp['rule']
    if 'epochs' in exp:
        assert cfg.train_cfg.max_epochs == exp['epochs']
    else:
        assert cfg.train_cfg.max_iters == exp['iters']
    assert cfg.model.backbone.checkpoint.endswith('.pth')

    model, optim = _build(cfg)
    backbone = model.backbone
    assert isinstance(backbone, PlainViT if exp['backbone'] == 'PlainViT' else ViTDet)
    assert backbone.num_layers == exp['layers']
    assert backbone.embed_dims == exp.get('dims', 768)
    assert _drop_path_per_block(backbone) == pytest.approx(
        torch.linspace(0, exp['drop_path'], exp['layers']).tolist())
    assert model.train_cfg['rpn_proposal']['max_per_img'] == exp['proposals']
    assert model.train_cfg['rpn_proposal']['nms_pre'] == 2000
    lr, rate, n = exp['lr'], exp['rate'], exp['layers']
    qkv_last = backbone.layers[n - 1].attn.qkv.weight
    g = _group_of(optim, qkv_last)
    assert g['lr'] == pytest.approx(lr * rate) and g['weight_decay'] == exp['wd']
    g = _group_of(optim, backbone.patch_embed.projection.weight)
    assert g['lr'] == pytest.approx(lr * rate**(n + 1))
    g = _group_of(optim, backbone.pos_embed)
    # decayed by BEiT's rule (CAE, iBOT, dBOT), exempt in ViTDet's
    assert g['lr'] == pytest.approx(lr * rate**(n + 1))
    assert g['weight_decay'] == (0. if exp['rule'] == 'vitdet' else exp['wd'])
    g = _group_of(optim, model.rpn_head.rpn_cls.weight)
    assert g['lr'] == pytest.approx(lr) and g['weight_decay'] == exp['wd']
    g = _group_of(optim, model.rpn_head.rpn_cls.bias)
    assert g['weight_decay'] == (exp['wd'] if exp['rule'] == 'vitdet' else 0.)

    # the schedulers the Runner builds, stepped as ParamSchedulerHook steps them
    epoch_length = 60
    schedulers = [
        PARAM_SCHEDULERS.build(
            s, default_args=dict(optimizer=optim, epoch_length=epoch_length))
        for s in cfg.param_scheduler
    ]
    groups = optim.optimizer.param_groups
    base = [g['initial_lr'] for g in groups]
    horizon = 13 * epoch_length if 'epochs' in exp else 600
    for it in range(horizon):
        epoch = it // epoch_length
        if it % 7 == 0 or it in (exp.get('warmup', 500) - 1, exp.get('warmup', 500)):
            for group, lr0 in zip(groups, base):
                assert group['lr'] == pytest.approx(_official_lr(lr0, it, epoch, exp),
                                                    rel=1e-9), it
        for s in schedulers:
            if not s.by_epoch:
                s.step()
        if (it + 1) % epoch_length == 0:
            for s in schedulers:
                if s.by_epoch:
                    s.step()
    if 'iters' in exp:
        assert [s for s in schedulers if type(s).__name__ == 'MultiStepLR'][0].milestones \
            == {m: 1 for m in exp['milestones']}

    if exp['backbone'] == 'ViTDet':
        assert [i for i, layer in enumerate(backbone.layers)
                if layer.window_size == 0] == [2, 5, 8, 11]
        assert {layer.window_size for layer in backbone.layers} == {0, 14}
        assert backbone.layers[2].attn.rel_pos_h.shape == (127, 64)
        assert backbone.layers[0].attn.rel_pos_h.shape == (27, 64)
        assert backbone.pos_grid == (14, 14)
        assert _group_of(optim, backbone.layers[0].attn.rel_pos_h)['weight_decay'] == 0.1
        assert model.neck.scale_factors == (4.0, 2.0, 1.0, 0.5)
        assert type(model.roi_head.bbox_head).__name__ == 'Shared4Conv1FCBBoxHead'
        assert type(model.roi_head.bbox_head.shared_convs[0].norm).__name__ == 'LayerNorm2d'
        assert type(model.roi_head.mask_head.convs[0].norm).__name__ == 'LayerNorm2d'
        assert model.rpn_head.num_convs == 2
        assert [h.type for h in cfg.custom_hooks] == ['Fp16CompressionHook']
    else:
        assert backbone.out_indices == exp.get('outs', [3, 5, 7, 11])
        assert model.neck.in_channels == [exp.get('dims', 768)] * 4
        heads = model.roi_head.bbox_head
        heads = list(heads) if isinstance(heads, torch.nn.ModuleList) else [heads]
        for head in heads:
            assert (head.num_shared_convs, head.num_shared_fcs) == (4, 1)
            assert type(head.loss_bbox).__name__ == 'GIoULoss'
            assert head.loss_bbox.loss_weight == 10.0 and head.reg_decoded_bbox
            assert not head.reg_class_agnostic
            assert isinstance(head.shared_convs[0].norm, torch.nn.SyncBatchNorm)
        assert isinstance(backbone.fpn1[1], torch.nn.SyncBatchNorm)
        if 'cascade' in path:
            assert model.roi_head.num_stages == 3
            assert model.roi_head.stage_loss_weights == [1, 0.5, 0.25]
            assert [list(h.bbox_coder.stds) for h in heads] == [
                [0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
            assert [a.pos_iou_thr for a in model.roi_head.bbox_assigner] == [0.5, 0.6, 0.7]
            assert len(model.roi_head.mask_head) == 3


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


def test_dbot_cascade_trains_and_predicts_on_coco_samples(demo_data):
    """dBOT's Cascade Mask R-CNN (the config's structure at 32 channels): one training
    step gives finite losses of the three box stages and their mask heads, with
    gradients into the ViT, and inference returns boxes and masks."""
    from mmdet.datasets import CocoDataset
    from mmdet.registry import MODELS
    from mmengine.model import revert_sync_batchnorm

    cfg = Config.fromfile(osp.join(
        ROOT, 'configs/benchmarks/detection/'
        'dbot_cascade-mask-rcnn_vit-b-p16_fpn_8xb2-ms-1x_coco.py'))
    cfg.model.backbone.update(
        arch=dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64),
        out_indices=(0, 1, 2, 3), checkpoint=None, adapter_norm_cfg=dict(type='BN'))
    # 32 channels after the ViT and fewer RoIs (the full heads take a minute on a CPU)
    model_cfg = cfg.model
    model_cfg.neck.update(in_channels=[32] * 4, out_channels=32)
    model_cfg.rpn_head.update(in_channels=32, feat_channels=32)
    model_cfg.roi_head.bbox_roi_extractor.out_channels = 32
    model_cfg.roi_head.mask_roi_extractor.out_channels = 32
    for head in model_cfg.roi_head.bbox_head:
        head.update(in_channels=32, conv_out_channels=32, fc_out_channels=64)
    model_cfg.roi_head.mask_head.update(in_channels=32, conv_out_channels=32)
    for stage in model_cfg.train_cfg.rcnn:
        stage.sampler.num = 64
    model_cfg.test_cfg.rpn.max_per_img = 64
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(model_cfg))  # SyncBN needs a process group
    model.init_weights()
    dataset = CocoDataset(
        data_root=osp.join(demo_data, 'scenes'),
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='img_dir/train/'),
        metainfo=dict(classes=DIGITS),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='PackDetInputs')
        ],
        indices=2)
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    for stage in range(3):
        for key in ('loss_cls', 'loss_bbox', 'loss_mask'):
            assert torch.isfinite(losses[f's{stage}.{key}']), (stage, key)
    total, _ = model.parse_losses(losses)
    total.backward()
    assert model.backbone.layers[0].attn.qkv.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate([dataset[0]]), training=False)
        preds = model.predict(data['inputs'], data['data_samples'])
    assert len(preds) == 1 and preds[0].pred_instances.masks.dim() == 3
