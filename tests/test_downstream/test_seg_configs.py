"""The ADE20K UperNet configs: they build the MAE/BEiT protocol, and layer decay is right."""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

import sdae_mm.downstream.seg  # noqa: F401  (SdMIMSegViT)
from tests.helpers.builders import build_from_config

#: default scope of every test here (see tests/conftest.py)
DEFAULT_SCOPE = 'mmseg'

SEG = 'configs/benchmarks/segmentation'
VIT_B = f'{SEG}/upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py'


def load(repo_root, name):
    return Config.fromfile(osp.join(repo_root, name))


@pytest.fixture(scope='module')
def vit_b_cfg(repo_root):
    return load(repo_root, VIT_B)


@pytest.fixture(scope='module')
def vit_b_model(vit_b_cfg):
    """The ViT-B UperNet of the config, built without loading weights."""
    # module-scoped: built before conftest's per-test default scope applies
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(vit_b_cfg.model)


def test_protocol_values(vit_b_cfg):
    cfg = vit_b_cfg
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(imports=['sdae_mm', 'sdae_mm.downstream.seg'],
                                      allow_failed_imports=False)
    # 160k iterations, 2 images x 8 GPUs, 512 crops
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr.base_batch_size == 16
    crop = [t for t in cfg.train_pipeline if t['type'] == 'RandomCrop'][0]
    assert tuple(crop['crop_size']) == (512, 512)
    assert cfg.train_dataloader.dataset.type == 'ADE20KDataset'
    assert cfg.train_dataloader.dataset.data_root == 'data/ade/ADEChallengeData2016'
    # AdamW lr 1e-4 wd 0.05, layer decay 0.65 through the shared constructor, AMP
    ow = cfg.optim_wrapper
    assert ow.type == 'AmpOptimWrapper' and ow.loss_scale == 'dynamic'
    assert ow.optimizer == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05)
    assert ow.constructor == 'ViTLayerDecayOptimWrapperConstructor'
    assert ow.paramwise_cfg == dict(layer_decay_rate=0.65, num_layers=12, no_decay_rule='beit')
    # 1,500-iteration linear warm-up on top of a poly (power 1) decay to 0 at 160k
    warm, poly = cfg.param_scheduler
    assert (warm.type, warm.begin, warm.end, warm.by_epoch) == ('LinearLR', 0, 1501, False)
    assert (poly.type, poly.begin, poly.end, poly.power, poly.eta_min) == (
        'PolyLR', 0, 160001, 1.0, 0.0)
    # sliding-window inference, 512 crop, 341 stride
    assert cfg.model.test_cfg == dict(mode='slide', crop_size=(512, 512), stride=(341, 341))
    assert cfg.val_evaluator == dict(type='IoUMetric', iou_metrics=['mIoU'])


def test_vit_b_model_structure(vit_b_model):
    model = vit_b_model
    backbone = model.backbone
    assert type(backbone).__name__ == 'SdMIMSegViT'
    assert backbone.patch_shape == (32, 32) and backbone.embed_dims == 768
    assert len(backbone.layers) == 12
    assert list(backbone.out_indices) == [3, 5, 7, 11]  # blocks 4/6/8/12
    assert backbone.final_norm is False
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint='')
    # stochastic depth rising linearly to 0.1
    drop = [layer.drop_path.drop_prob for layer in backbone.layers]
    assert drop[0] == 0 and drop[-1] == pytest.approx(0.1)
    assert drop == pytest.approx(torch.linspace(0, 0.1, 12).tolist())
    # relative position bias per block (from zero), layer scale starting at 1
    table = backbone.layers[0].attn.relative_position_bias_table
    assert tuple(table.shape) == ((2 * 32 - 1)**2 + 3, 12)
    assert torch.count_nonzero(table) == 0
    assert torch.equal(backbone.layers[5].gamma_2, torch.ones(768))
    assert tuple(backbone.pos_embed.shape) == (1, 1 + 32 * 32, 768)
    # pyramid, UperNet and the auxiliary FCN head
    assert type(model.neck).__name__ == 'Feature2Pyramid'
    assert model.neck.rescales == [4, 2, 1, 0.5]
    assert type(model.decode_head).__name__ == 'UPerHead'
    assert model.decode_head.num_classes == 150 and model.decode_head.channels == 768
    assert type(model.auxiliary_head).__name__ == 'FCNHead'
    assert model.auxiliary_head.in_index == 2
    assert model.auxiliary_head.loss_decode.loss_weight == 0.4


def test_vit_b_pyramid_shapes(vit_b_model):
    """Features of blocks 4/6/8/12 become the 1/4 .. 1/32 pyramid."""
    neck = vit_b_model.neck.eval()
    feats = [torch.zeros(1, 768, 32, 32) for _ in range(4)]
    with torch.no_grad():
        outs = neck(feats)
    assert [tuple(o.shape[-2:]) for o in outs] == [(128, 128), (64, 64), (32, 32), (16, 16)]


def test_layer_decay_groups_of_vit_b(vit_b_cfg, vit_b_model):
    ow_cfg = vit_b_cfg.optim_wrapper.copy()
    if not torch.cuda.is_available():
        ow_cfg['type'] = 'OptimWrapper'  # AmpOptimWrapper needs a GPU
        ow_cfg.pop('loss_scale')
    optim = build_optim_wrapper(vit_b_model, ow_cfg)
    group_of = {}
    for group in optim.optimizer.param_groups:
        for p in group['params']:
            group_of[id(p)] = group
    seen = 0
    for name, param in vit_b_model.named_parameters():
        group = group_of[id(param)]
        if name.startswith(('backbone.cls_token', 'backbone.pos_embed',
                            'backbone.patch_embed.')):
            layer = 0
        elif name.startswith('backbone.layers.'):
            layer = int(name.split('.')[2]) + 1
        else:  # neck, decode head, auxiliary head
            assert not name.startswith('backbone.'), name
            layer = 13
        assert group['lr'] == pytest.approx(1e-4 * 0.65**(13 - layer)), name
        # BEiT's rule (mmseg, mae_segmentation): only 1-D parameters and biases are exempt
        no_decay = param.ndim == 1 or name.endswith('.bias')
        assert group['weight_decay'] == (0. if no_decay else 0.05), name
        seen += 1
    assert seen == len(group_of)
    named = dict(vit_b_model.named_parameters())
    lr = {n: group_of[id(named[n])]['lr'] for n in (
        'backbone.pos_embed', 'backbone.layers.0.attn.qkv.weight',
        'backbone.layers.11.ffn.layers.1.weight', 'decode_head.conv_seg.weight')}
    assert lr == pytest.approx({
        'backbone.pos_embed': 1e-4 * 0.65**13,
        'backbone.layers.0.attn.qkv.weight': 1e-4 * 0.65**12,
        'backbone.layers.11.ffn.layers.1.weight': 1e-4 * 0.65,
        'decode_head.conv_seg.weight': 1e-4})
    for name in ('backbone.layers.3.gamma_1', 'backbone.layers.3.attn.proj.bias',
                 'neck.upsample_4x.1.weight', 'decode_head.bottleneck.bn.weight'):
        assert group_of[id(named[name])]['weight_decay'] == 0, name
    for name in ('backbone.layers.3.attn.relative_position_bias_table', 'backbone.pos_embed',
                 'backbone.cls_token', 'backbone.patch_embed.projection.weight',
                 'neck.upsample_4x.0.weight', 'auxiliary_head.convs.0.conv.weight'):
        assert group_of[id(named[name])]['weight_decay'] == 0.05, name


@pytest.mark.parametrize('name, dims, depth, heads, outs, drop, lr, decay', [
    ('upernet_vit-s-p16_8xb2-amp-160k_ade20k-512x512.py', 384, 12, 6, (3, 5, 7, 11), 0.1,
     1e-4, 0.65),
    ('upernet_vit-l-p16_8xb2-amp-160k_ade20k-512x512.py', 1024, 24, 16, (7, 11, 15, 23), 0.2,
     3e-5, 0.95),
])
def test_vit_s_and_l_variants(repo_root, name, dims, depth, heads, outs, drop, lr, decay):
    cfg = load(repo_root, f'{SEG}/{name}')
    bb = cfg.model.backbone
    assert (bb.type, bb.embed_dims, bb.num_layers, bb.num_heads) == (
        'SdMIMSegViT', dims, depth, heads)
    assert tuple(bb.out_indices) == outs and bb.drop_path_rate == drop
    assert cfg.model.neck.embed_dim == dims
    assert cfg.model.decode_head.in_channels == [dims] * 4
    assert cfg.model.decode_head.channels == dims
    assert cfg.model.auxiliary_head.in_channels == dims
    assert cfg.optim_wrapper.optimizer.lr == lr
    assert cfg.optim_wrapper.paramwise_cfg == dict(
        layer_decay_rate=decay, num_layers=depth, no_decay_rule='beit')
    # the rest of the protocol is inherited unchanged
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.model.test_cfg.stride == (341, 341)


def tiny_segmentor(model_cfg):
    """Shrink the UperNet ViT of a config (32 px crops, 4 blocks of 32 dims)."""
    model_cfg.data_preprocessor.update(size=(32, 32), test_cfg=dict(size=(32, 32)))
    model_cfg.backbone.update(img_size=(32, 32), patch_size=8, embed_dims=32, num_layers=4,
                              num_heads=2, out_indices=(0, 1, 2, 3), init_cfg=None)
    model_cfg.neck.embed_dim = 32
    model_cfg.decode_head.update(in_channels=[32] * 4, channels=16)
    model_cfg.auxiliary_head.update(in_channels=32, channels=8)
    model_cfg.test_cfg.update(crop_size=(32, 32), stride=(21, 21))


def fake_ade(root, split='training', shape=(40, 100)):
    """One random image and label map in ADE20K's folder layout under ``root``."""
    import numpy as np
    from PIL import Image
    (root / 'images' / split).mkdir(parents=True)
    (root / 'annotations' / split).mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, shape + (3, ), dtype=np.uint8)).save(
        root / 'images' / split / 'a.jpg')
    Image.fromarray(rng.integers(1, 151, shape, dtype=np.uint8)).save(
        root / 'annotations' / split / 'a.png')
    return str(root)


def build_runner(cfg, work_dir):
    """A Runner of the config (the model shrunk, one training image: the Runner reads
    the epoch length when it builds schedulers), with its optimizer built."""
    from mmengine.runner import Runner
    tiny_segmentor(cfg.model)
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.data_root = fake_ade(work_dir / 'ade')
    cfg.optim_wrapper.paramwise_cfg.num_layers = 4
    cfg.optim_wrapper.type = 'OptimWrapper'  # AmpOptimWrapper needs a GPU
    cfg.optim_wrapper.pop('loss_scale')
    cfg.work_dir = str(work_dir / 'work_dir')
    runner = Runner.from_cfg(cfg)
    runner.optim_wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    return runner


def test_lr_schedule_is_mmcv_poly_with_linear_warmup(repo_root, tmp_path):
    """The Runner's schedulers give the lr of mmcv 0.x's poly policy with linear warm-up
    (BEiT/mae_segmentation lr_config: power 1, min 0, warm-up 1,500 iters from 1e-6)."""
    cfg = load(repo_root, VIT_B)
    runner = build_runner(cfg, tmp_path)
    groups = runner.optim_wrapper.optimizer.param_groups
    base = [g['lr'] for g in groups]
    assert max(base) == 1e-4 and len(set(base)) == 6  # layers 0 .. N + 1 (N = 4)
    schedulers = runner.build_param_scheduler(cfg.param_scheduler)

    def official(lr, it):  # mmcv PolyLrUpdaterHook + linear warm-up, written out
        regular = lr * (1 - it / 160000)**1.0
        if it >= 1500:
            return regular
        k = (1 - it / 1500) * (1 - 1e-6)
        return regular * (1 - k)

    checked = 0
    for it in range(3001):
        if it in (0, 1, 750, 1499, 1500, 1501, 2000, 3000):
            for group, lr in zip(groups, base):
                assert group['lr'] == pytest.approx(official(lr, it), rel=1e-6), it
            checked += 1
        for scheduler in schedulers:
            scheduler.step()
    assert checked == 8


def test_dbot_vit_b_recipe(tmp_path):
    """dBOT's UperNet ViT-B: the ViT-B protocol with drop path 0.2 (DOWNSTREAM.md)."""
    cfg, model, optim = build_from_config(
        f'{SEG}/dbot_upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py', 'mmseg')
    backbone = model.backbone
    assert (backbone.embed_dims, len(backbone.layers)) == (768, 12)
    drop = [layer.drop_path.drop_prob for layer in backbone.layers]
    assert drop == pytest.approx(torch.linspace(0, 0.2, 12).tolist())
    assert model.decode_head.channels == 768
    group_of = {id(p): g for g in optim.optimizer.param_groups for p in g['params']}
    named = dict(model.named_parameters())
    qkv = group_of[id(named['backbone.layers.11.attn.qkv.weight'])]
    assert qkv['lr'] == pytest.approx(1e-4 * 0.65) and qkv['weight_decay'] == 0.05
    pos = group_of[id(named['backbone.pos_embed'])]
    assert pos['lr'] == pytest.approx(1e-4 * 0.65**13) and pos['weight_decay'] == 0.05
    assert group_of[id(named['decode_head.conv_seg.weight'])]['lr'] == pytest.approx(1e-4)
    # the same schedule as the ViT-B protocol, from the Runner's schedulers
    runner = build_runner(cfg, tmp_path)
    warm, poly = runner.build_param_scheduler(cfg.param_scheduler)
    assert (type(warm).__name__, warm.total_iters, warm.start_factor) == ('LinearLR', 1500, 1e-6)
    assert (type(poly).__name__, poly.begin, poly.total_iters, poly.power) == (
        'PolyLR', 0, 160000, 1.)


def test_ms_flip_test_variant(repo_root):
    cfg = load(repo_root, f'{SEG}/upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512-ms-flip.py')
    assert cfg.model.type == 'SegTTAModel'
    assert cfg.model.module.type == 'EncoderDecoder'
    assert cfg.model.module.backbone.type == 'SdMIMSegViT'
    assert cfg.model.module.test_cfg.mode == 'slide'
    # views smaller than the crop are padded to it for the fixed-size ViT
    assert cfg.model.module.data_preprocessor.test_cfg == dict(size=(512, 512))
    tta = cfg.test_dataloader.dataset.pipeline[1]
    assert tta.type == 'TestTimeAug'
    scales, flips = tta.transforms[0], tta.transforms[1]
    assert [tuple(t['scale']) for t in scales] == [
        (1024, 256), (1536, 384), (2048, 512), (2560, 640), (3072, 768), (3584, 896)]
    assert all(t['keep_ratio'] for t in scales)
    assert [t['prob'] for t in flips] == [0., 1.]


def test_ms_flip_variant_predicts_at_original_size(repo_root, tmp_path):
    """The 12-view test runs end to end (tiny backbone): small views are padded to the
    crop, and the merged prediction has the original image size."""
    from mmengine.dataset import pseudo_collate
    from mmseg.registry import DATASETS

    root = fake_ade(tmp_path / 'ade', split='validation')

    cfg = load(repo_root, f'{SEG}/upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512-ms-flip.py')
    # scales relative to (2048, 512) -> here (128, 32) x ratios, crop 32
    for t in cfg.test_dataloader.dataset.pipeline[1].transforms[0]:
        t['scale'] = (t['scale'][0] // 16, t['scale'][1] // 16)
    cfg.test_dataloader.dataset.data_root = root
    tiny_segmentor(cfg.model.module)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    model = MODELS.build(cfg.model)
    model.module.init_weights()
    model.eval()
    sample = dataset[0]
    # 6 scales x 2 flips: short sides 16, 24 (padded to the 32 crop) .. 56
    assert len(sample['inputs']) == 12
    sizes = sorted({tuple(x.shape[-2:]) for x in sample['inputs']})
    assert sizes == [(16, 40), (24, 60), (32, 80), (40, 100), (48, 120), (56, 140)]
    with torch.no_grad():
        preds = model.test_step(pseudo_collate([sample]))
    assert len(preds) == 1
    pred = preds[0].pred_sem_seg.data
    assert tuple(pred.shape) == (1, 40, 100)
    assert int(pred.min()) >= 0 and int(pred.max()) < 150


# total batch on the declared GPUs, lr, layer decay, drop path, no-decay rule (BEiT's for
# all: mmseg, mae_segmentation and dBOT use its constructor)
SEG_OFFICIAL = {
    # mmseg configs/mae/mae-base_upernet_8xb2-amp-160k (= BEiT/MAE protocol)
    'upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py':
    dict(batch=16, lr=1e-4, decay=0.65, depth=12, drop_path=0.1),
    # the ViT-B protocol at ViT-S width (no official ViT-S recipe)
    'upernet_vit-s-p16_8xb2-amp-160k_ade20k-512x512.py':
    dict(batch=16, lr=1e-4, decay=0.65, depth=12, drop_path=0.1),
    # dBOT DOWNSTREAM.md ViT-L (mae_segmentation upernet_mae_large_12_512_slide_160k)
    'upernet_vit-l-p16_8xb2-amp-160k_ade20k-512x512.py':
    dict(batch=16, lr=3e-5, decay=0.95, depth=24, drop_path=0.2),
    # dBOT DOWNSTREAM.md ViT-B
    'dbot_upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py':
    dict(batch=16, lr=1e-4, decay=0.65, depth=12, drop_path=0.2),
}


@pytest.mark.parametrize('name', sorted(SEG_OFFICIAL))
def test_effective_recipe_on_the_declared_gpus(name):
    """Built model and optimizer of each training config against the official run."""
    exp = SEG_OFFICIAL[name]
    cfg, model, wrapper = build_from_config(f'{SEG}/{name}', 'mmseg')
    gpus, per_gpu = map(int, re.search(r'(\d+)xb(\d+)', name).groups())
    assert cfg.train_dataloader.batch_size == per_gpu
    assert gpus * per_gpu * wrapper._accumulative_counts == exp['batch']
    assert cfg.auto_scale_lr.enable is False  # the lr is the config's on those GPUs
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.paramwise_cfg.no_decay_rule == 'beit'
    groups = wrapper.optimizer.param_groups
    depth = len(model.backbone.layers)
    assert depth == exp['depth']
    assert max(g['lr'] for g in groups) == pytest.approx(exp['lr'], rel=1e-12)
    assert min(g['lr'] for g in groups) == pytest.approx(
        exp['lr'] * exp['decay']**(depth + 1), rel=1e-12)
    assert {g['weight_decay'] for g in groups} == {0., 0.05}
    drop = [layer.drop_path.drop_prob for layer in model.backbone.layers]
    assert drop == pytest.approx(torch.linspace(0, exp['drop_path'], depth).tolist())
    assert cfg.train_cfg.max_iters == 160000
