"""Classification transfer configs: the official recipes survive config -> model/optimizer."""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

CLS = 'configs/benchmarks/classification'
FINETUNE_B = f'{CLS}/vit-base-p16_8xb128-coslr-100e_in1k.py'
LINEAR_B = f'{CLS}/vit-base-p16_linear-8xb512-coslr-90e_in1k.py'
FINETUNE_DEMO = 'configs/demo/finetune_vit-demo-p8_1xb64-coslr-5e_digits.py'
LINEAR_DEMO = 'configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py'


def _cfg(repo_root, path):
    return Config.fromfile(osp.join(repo_root, path))


def _build(cfg):
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model_cfg = dict(cfg.model)
    model_cfg['backbone'] = dict(model_cfg['backbone'], init_cfg=None)
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    return MODELS.build(model_cfg)


def _cpu_optim_wrapper(cfg):
    """The config's optimizer wrapper, without AMP (mmengine's AMP wrapper needs a GPU)."""
    ow = dict(cfg.optim_wrapper)
    ow['type'] = 'OptimWrapper'
    ow.pop('loss_scale', None)
    return ow


@pytest.fixture(scope='module')
def finetune_b(repo_root):
    cfg = _cfg(repo_root, FINETUNE_B)
    return cfg, _build(cfg)


def test_finetune_vit_b_model_is_the_official_one(finetune_b):
    cfg, model = finetune_b
    vit = model.backbone
    assert (vit.embed_dims, vit.num_layers, vit.patch_resolution) == (768, 12, (14, 14))
    assert vit.out_type == 'avg_featmap' and not vit.final_norm and hasattr(vit, 'ln2')
    # stochastic depth 0.1 at the last block, linear in depth (timm's dpr)
    assert vit.layers[-1].ffn.dropout_layer.drop_prob == pytest.approx(0.1)
    assert vit.layers[6].ffn.dropout_layer.drop_prob == pytest.approx(0.1 * 6 / 11)
    # global average pooling of the patch tokens, then the new norm
    x = torch.randn(2, 1 + 196, 768)
    torch.testing.assert_close(vit._format_output(x, (14, 14)), vit.ln2(x[:, 1:].mean(1)))
    head = model.head
    assert head.loss_module.__class__.__name__ == 'LabelSmoothLoss'
    assert head.loss_module.label_smooth_val == 0.1 and head.loss_module.mode == 'original'
    assert cfg.model.head.init_cfg[0]['std'] == 2e-5
    augments = model.data_preprocessor.batch_augments.augments
    assert [(type(a).__name__, a.alpha) for a in augments] == [('Mixup', 0.8), ('CutMix', 1.0)]
    assert model.data_preprocessor.batch_augments.probs is None  # 50/50 switch


def test_finetune_vit_b_layer_decay_and_schedule(finetune_b):
    cfg, model = finetune_b
    assert cfg.optim_wrapper.constructor == 'ViTLayerDecayOptimWrapperConstructor'
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.65
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay, opt.betas) == ('AdamW', 2e-3, 0.05,
                                                               (0.9, 0.999))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and 'clip_grad' not in cfg.optim_wrapper
    wrapper = build_optim_wrapper(model, _cpu_optim_wrapper(cfg))
    groups = wrapper.optimizer.param_groups

    def group_of(name):
        param = dict(model.named_parameters())[name]
        return next(g for g in groups if any(p is param for p in g['params']))

    assert group_of('backbone.pos_embed')['lr'] == pytest.approx(2e-3 * 0.65**13)
    assert group_of('backbone.pos_embed')['weight_decay'] == 0.
    assert group_of('backbone.layers.0.attn.qkv.weight')['lr'] == pytest.approx(2e-3 * 0.65**12)
    assert group_of('backbone.layers.11.ffn.layers.1.weight')['lr'] == pytest.approx(2e-3 * 0.65)
    assert group_of('backbone.layers.11.ffn.layers.1.weight')['weight_decay'] == 0.05
    assert group_of('head.fc.weight')['lr'] == pytest.approx(2e-3)
    assert group_of('backbone.ln2.weight')['weight_decay'] == 0.
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end, cosine.begin, cosine.end) == ('LinearLR', 5, 5, 100)
    assert warmup.start_factor < 1e-6 and warmup.convert_to_iter_based
    assert cosine.eta_min_ratio * 2e-3 == pytest.approx(1e-6)  # official min_lr
    assert cfg.train_cfg.max_epochs == 100 and cfg.train_dataloader.batch_size == 128
    assert cfg.auto_scale_lr.base_batch_size == 8 * 128


def test_finetune_data_pipeline(repo_root):
    cfg = _cfg(repo_root, FINETUNE_B)
    types = [t['type'] for t in cfg.train_pipeline]
    assert types == ['LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'RandAugment',
                     'RandomErasing', 'PackInputs']
    ra = cfg.train_pipeline[3]
    assert (ra.policies, ra.num_policies, ra.magnitude_level, ra.magnitude_std,
            ra.total_level) == ('timm_increasing', 2, 9, 0.5, 10)
    re = cfg.train_pipeline[4]
    assert (re.erase_prob, re.mode, re.max_area_ratio) == (0.25, 'rand', pytest.approx(1 / 3))
    test_types = [(t['type'], t.get('scale', t.get('crop_size'))) for t in cfg.test_pipeline]
    assert test_types[1:3] == [('ResizeEdge', 256), ('CenterCrop', 224)]


def test_linear_probe_vit_b_is_the_official_protocol(repo_root):
    cfg = _cfg(repo_root, LINEAR_B)
    model = _build(cfg)
    vit = model.backbone
    assert vit.out_type == 'cls_token' and vit.final_norm
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ['head.fc.bias', 'head.fc.weight']
    bn = model.neck.bn
    assert isinstance(bn, torch.nn.BatchNorm1d) and not bn.affine and bn.eps == 1e-6
    assert model.head.loss_module.__class__.__name__ == 'CrossEntropyLoss'
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay, opt.momentum, opt.eta) == ('LARS', 1.6, 0.,
                                                                           0.9, 0.001)
    wrapper = build_optim_wrapper(model, _cpu_optim_wrapper(cfg))
    groups = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    assert len(groups) == 2  # only the head is optimised
    assert groups[id(model.head.fc.bias)].get('lars_exclude') is True
    assert not groups[id(model.head.fc.weight)].get('lars_exclude', False)
    warmup, cosine = cfg.param_scheduler
    assert (warmup.end, cosine.end, cosine.eta_min) == (10, 90, 0.)
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 4096
    assert [t['type'] for t in cfg.train_pipeline] == [
        'LoadImageFromFile', 'ClampedRandomResizedCrop', 'RandomFlip', 'PackInputs']
    big = _cfg(repo_root, f'{CLS}/vit-base-p16_linear-8xb2048-coslr-90e_in1k.py')
    assert big.optim_wrapper.optimizer.lr == pytest.approx(6.4)
    assert big.auto_scale_lr.base_batch_size == 16384


def test_lars_config_reproduces_moco_v3_lars_at_constant_lr(repo_root):
    """mmpretrain's LARS with lars_exclude on the bias == the official util/lars.py rule."""
    from mmpretrain.engine.optimizers import LARS
    torch.manual_seed(0)
    w0, b0 = torch.randn(4, 3) * 0.1, torch.randn(4) * 0.1
    grads = [(torch.randn(4, 3), torch.randn(4)) for _ in range(5)]
    w, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(b0.clone())
    opt = LARS([dict(params=[w]), dict(params=[b], lars_exclude=True)], lr=0.5,
               momentum=0.9, weight_decay=0., eta=0.001)
    ref_w, ref_b, mu_w, mu_b = w0.clone(), b0.clone(), torch.zeros(4, 3), torch.zeros(4)
    for gw, gb in grads:
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        # official: dp = g * trust * |p| / |g| for ndim > 1, mu = 0.9 mu + dp, p -= lr mu
        q = 0.001 * ref_w.norm() / gw.norm()
        mu_w = 0.9 * mu_w + gw * q
        mu_b = 0.9 * mu_b + gb
        ref_w, ref_b = ref_w - 0.5 * mu_w, ref_b - 0.5 * mu_b
    torch.testing.assert_close(w.data, ref_w, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(b.data, ref_b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('path, arch, layers, decay, epochs, lr', [
    (f'{CLS}/vit-large-p16_8xb128-coslr-50e_in1k.py', 'large', 24, 0.75, 50, 4e-3),
    (f'{CLS}/dbot_vit-base-p16_8xb128-coslr-100e_in1k.py', 'base', 12, 0.65, 100, 1.2e-3),
    (f'{CLS}/dbot_vit-large-p16_8xb128-coslr-50e_in1k.py', 'large', 24, 0.75, 50, 1.2e-3),
    (f'{CLS}/dbot_vit-huge-p14_8xb128-coslr-50e_in1k.py', 'huge', 32, 0.75, 50, 1.2e-3),
    (f'{CLS}/rc_mae_vit-large-p16_8xb128-coslr-100e_in1k.py', 'large', 24, 0.65, 100, 2e-3),
    (f'{CLS}/rc_mae_vit-small-p16_8xb128-coslr-300e_in1k.py', 'deit-small', 12, 0.75, 300,
     2e-3),
])
def test_other_finetune_recipes(repo_root, path, arch, layers, decay, epochs, lr):
    cfg = _cfg(repo_root, path)
    assert cfg.model.backbone.arch == arch
    width = {'deit-small': 384, 'base': 768, 'large': 1024, 'huge': 1280}[arch]
    assert cfg.model.head.in_channels == width
    pw = cfg.optim_wrapper.paramwise_cfg
    assert pw.layer_decay_rate == decay and pw.get('num_layers', 12) == layers
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(lr)
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == 5 and cosine.end == epochs and cosine.T_max == epochs - 5
    assert cosine.eta_min_ratio * lr == pytest.approx(1e-6)


def test_every_classification_config_parses(repo_root):
    paths = sorted(glob.glob(osp.join(repo_root, CLS, '*.py')))
    assert len(paths) >= 9
    for path in paths + [osp.join(repo_root, p) for p in (FINETUNE_DEMO, LINEAR_DEMO)]:
        cfg = Config.fromfile(path)
        assert cfg.default_scope == 'mmpretrain' and 'sdae_mm' in cfg.custom_imports.imports
        assert cfg.model.backbone.init_cfg.type == 'Pretrained'


def test_demo_configs_keep_the_protocols(repo_root, tmp_path):
    ft = _cfg(repo_root, FINETUNE_DEMO)
    lin = _cfg(repo_root, LINEAR_DEMO)
    for cfg in (ft, lin):
        bb = cfg.model.backbone
        assert bb.arch == dict(embed_dims=96, num_layers=6, num_heads=3,
                               feedforward_channels=384)
        assert (bb.img_size, bb.patch_size) == (64, 8)
        assert bb.init_cfg.checkpoint == 'work_dirs/demo/sdae/backbone_mmpretrain.pth'
        assert cfg.train_dataloader.dataset.type == 'CustomDataset'
        assert cfg.model.head.num_classes == 10 and cfg.data_preprocessor.num_classes == 10
        assert not cfg.auto_scale_lr.enable
    assert ft.optim_wrapper.constructor == 'ViTLayerDecayOptimWrapperConstructor'
    assert ft.optim_wrapper.paramwise_cfg == dict(layer_decay_rate=0.65, num_layers=6)
    assert ft.model.backbone.out_type == 'avg_featmap' and ft.model.backbone.drop_path_rate == 0.1
    assert ft.model.head.loss.type == 'LabelSmoothLoss'
    # scaled for a few CPU epochs: no Mixup/CutMix, RandAugment or erasing (docs/fidelity.md)
    assert ft.model.train_cfg is None
    steps = [t['type'] for t in ft.train_pipeline]
    assert steps == ['LoadImageFromFile', 'RandomResizedCrop', 'PackInputs']
    assert ft.train_dataloader.dataset.pipeline == ft.train_pipeline
    assert lin.optim_wrapper.optimizer.type == 'LARS'
    assert lin.optim_wrapper.paramwise_cfg.custom_keys['head.fc.bias'] == dict(
        lars_exclude=True)
    assert lin.model.neck.type == 'ClsBatchNormNeck' and lin.model.backbone.frozen_stages == 6
    # the Pretrained init loads a converted checkpoint (no prefix) into the classifier
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(0)
    vit = VisionTransformer(arch=dict(embed_dims=96, num_layers=6, num_heads=3,
                                      feedforward_channels=384), img_size=64, patch_size=8)
    ckpt = str(tmp_path / 'backbone_mmpretrain.pth')
    torch.save({'state_dict': vit.state_dict(), 'meta': {}}, ckpt)
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(ft.model, backbone=dict(
        ft.model.backbone, init_cfg=dict(ft.model.backbone.init_cfg, checkpoint=ckpt))))
    model.init_weights()
    for name, value in vit.state_dict().items():
        if not name.startswith('ln1'):  # the final norm is unused with avg pooling
            torch.testing.assert_close(model.backbone.state_dict()[name], value)
    assert math.isclose(float(model.backbone.ln2.weight.detach().mean()), 1.0)
