"""Tests of the shared layer-decay optimizer constructor."""
import copy
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope

import sdae_mm  # noqa: F401  (registers everything)
from sdae_mm.engine.optimizers import ViTLayerDecayOptimWrapperConstructor
from sdae_mm.engine.optimizers import layer_decay_constructor as ldc_module
from sdae_mm.checkpoint import mmpretrain_to_timm_key

NAME = 'ViTLayerDecayOptimWrapperConstructor'
LR, WD, RATE = 1e-3, 0.05, 0.65
TINY_ARCH = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)


def build_groups(model, rate=RATE, **paramwise):
    """Build the optim wrapper; return {param id: group} and the groups."""
    constructor = ViTLayerDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=LR, weight_decay=WD)),
        dict(layer_decay_rate=rate, **paramwise))
    groups = constructor(model).optimizer.param_groups
    by_param = {}
    for group in groups:
        for p in group['params']:
            assert id(p) not in by_param, 'a parameter is in two groups'
            by_param[id(p)] = group
    return by_param, groups


def expected_wd(name, param):
    """The no-decay rule, written independently of the constructor."""
    leaf = name.rsplit('.', 1)[-1]
    no_decay = (param.ndim <= 1 or leaf in ('pos_embed', 'cls_token', 'mask_token')
                or leaf == 'relative_position_bias_table')
    return 0. if no_decay else WD


def check_group_invariants(model, by_param, groups):
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(by_param) == len(trainable)
    keys = [(g['lr'], g['weight_decay']) for g in groups]
    assert len(keys) == len(set(keys)), 'equal (lr, wd) must share one group'
    for g in groups:
        assert g['lr'] == pytest.approx(LR * g['lr_scale'], rel=1e-12)


# --------------------------------------------------------------------- registry
def test_registered_once_and_visible_from_every_scope():
    from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS as DET
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as ROOT
    from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS as PRETRAIN
    from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as SEG

    assert ROOT.module_dict[NAME] is ViTLayerDecayOptimWrapperConstructor
    for registry in (PRETRAIN, SEG, DET):
        assert registry.get(NAME) is ViTLayerDecayOptimWrapperConstructor
        # no name clash with the libraries' own constructors
        assert NAME not in registry.module_dict
    own = {'LearningRateDecayOptimWrapperConstructor', 'LayerDecayOptimizerConstructor',
           'LearningRateDecayOptimizerConstructor'}
    assert NAME not in own


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmseg', 'mmdet'])
def test_build_optim_wrapper_from_config_in_each_scope(scope):
    import timm
    from mmengine.optim import build_optim_wrapper

    model = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=3)
    cfg = dict(optimizer=dict(type='AdamW', lr=LR, weight_decay=WD), constructor=NAME,
               paramwise_cfg=dict(layer_decay_rate=0.5))
    with DefaultScope.overwrite_default_scope(scope):
        wrapper = build_optim_wrapper(model, copy.deepcopy(cfg))
    scales = sorted({g['lr_scale'] for g in wrapper.optimizer.param_groups})
    assert scales == pytest.approx([0.125, 0.25, 0.5, 1.0])


# ------------------------------------------------------------------ vs timm, ViT-B
def _on_meta(fn):
    """Build a (large) model without allocating or initialising its weights."""
    with torch.device('meta'):
        return fn()


def test_vit_b_classifier_matches_timm_param_groups_layer_decay():
    import timm
    from mmpretrain.models import ImageClassifier
    from timm.optim import param_groups_layer_decay

    ours = _on_meta(lambda: ImageClassifier(
        backbone=dict(type='VisionTransformer', arch='b', img_size=224, patch_size=16),
        head=dict(type='VisionTransformerClsHead', num_classes=1000, in_channels=768)))
    ref = _on_meta(lambda: timm.create_model('vit_base_patch16_224', num_classes=1000))

    by_param, groups = build_groups(ours)
    check_group_invariants(ours, by_param, groups)
    ref_groups = param_groups_layer_decay(
        ref, weight_decay=WD, no_weight_decay_list=ref.no_weight_decay(),
        layer_decay=RATE)
    ref_by_name = {}
    ref_params = dict(ref.named_parameters())
    for group in ref_groups:
        for p in group['params']:
            name = next(n for n, q in ref_params.items() if q is p)
            ref_by_name[name] = (group['lr_scale'], group['weight_decay'])

    seen = set()
    for name, param in ours.named_parameters():
        if name.startswith('backbone.'):
            timm_name = mmpretrain_to_timm_key(name[len('backbone.'):])
        else:
            assert name.startswith('head.layers.head.')
            timm_name = 'head.' + name[len('head.layers.head.'):]
        seen.add(timm_name)
        group = by_param[id(param)]
        ref_scale, ref_wd = ref_by_name[timm_name]
        assert group['weight_decay'] == ref_wd, name
        if timm_name.startswith('norm.'):
            # The one difference: timm's group_matcher puts the final norm with the
            # last block (rate ** 1); the rule (official MAE/BEiT lr_decay) puts it
            # with the head, layer N + 1 (rate ** 0).
            assert ref_scale == pytest.approx(RATE)
            assert group['lr_scale'] == pytest.approx(1.0)
        else:
            assert group['lr_scale'] == pytest.approx(ref_scale, rel=1e-12), name
    assert seen == set(ref_by_name)
    # layer 0 .. 13: two groups each (decayed weights, exempt 1-D/tokens)
    assert len(groups) == 28
    assert min(g['lr_scale'] for g in groups) == pytest.approx(RATE**13)


# --------------------------------------------------------------------- mmseg
def test_mmseg_encoder_decoder_mae_upernet():
    from mmseg.engine.optimizers.layer_decay_optimizer_constructor import get_layer_id_for_vit
    from mmseg.registry import MODELS
    num_layers = 4
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', size=(32, 32)),
        backbone=dict(type='MAE', img_size=32, patch_size=8, embed_dims=32,
                      num_layers=num_layers, num_heads=2, mlp_ratio=2,
                      init_values=1.0, out_indices=[0, 1, 2, 3]),
        neck=dict(type='Feature2Pyramid', embed_dim=32, rescales=[4, 2, 1, 0.5],
                  norm_cfg=dict(type='BN', requires_grad=True)),
        decode_head=dict(type='UPerHead', in_channels=[32] * 4, in_index=[0, 1, 2, 3],
                         channels=16, num_classes=3,
                         norm_cfg=dict(type='BN', requires_grad=True)),
        auxiliary_head=dict(type='FCNHead', in_channels=32, in_index=2, channels=8,
                            num_convs=1, num_classes=3,
                            norm_cfg=dict(type='BN', requires_grad=True)))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg)
    by_param, groups = build_groups(model)
    check_group_invariants(model, by_param, groups)
    names = [n for n, _ in model.named_parameters()]
    assert any('relative_position_bias_table' in n for n in names)
    assert any(n.endswith('gamma_1') for n in names)
    for name, param in model.named_parameters():
        # mmseg's own ViT layer rule (max id N + 2) is the independent reference
        layer = get_layer_id_for_vit(name, num_layers + 2)
        group = by_param[id(param)]
        assert group['lr_scale'] == pytest.approx(RATE**(num_layers + 1 - layer)), name
        assert group['weight_decay'] == expected_wd(name, param), name
    table = model.backbone.layers[2].attn.relative_position_bias_table
    assert by_param[id(table)]['lr_scale'] == pytest.approx(RATE**2)
    assert by_param[id(table)]['weight_decay'] == 0.


# --------------------------------------------------------------------- mmdet
def _tiny_mask_rcnn_cfg():
    import mmdet
    from mmengine.config import Config
    base = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', '_base_', 'models',
                    'mask-rcnn_r50_fpn.py')
    cfg = Config.fromfile(base).model
    cfg.backbone = dict(type='mmpretrain.VisionTransformer', arch=dict(TINY_ARCH),
                        img_size=64, patch_size=8, out_type='featmap',
                        out_indices=(1, 2), final_norm=False)
    cfg.neck = dict(type='FPN', in_channels=[32, 32], out_channels=16, num_outs=5)
    cfg.rpn_head.in_channels = 16
    cfg.rpn_head.feat_channels = 16
    cfg.roi_head.bbox_roi_extractor.out_channels = 16
    cfg.roi_head.bbox_head.in_channels = 16
    cfg.roi_head.bbox_head.fc_out_channels = 32
    cfg.roi_head.bbox_head.num_classes = 3
    cfg.roi_head.mask_roi_extractor.out_channels = 16
    cfg.roi_head.mask_head.in_channels = 16
    cfg.roi_head.mask_head.conv_out_channels = 16
    cfg.roi_head.mask_head.num_classes = 3
    return cfg


def test_mmdet_mask_rcnn_with_vit_backbone():
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(_tiny_mask_rcnn_cfg())
    n = TINY_ARCH['num_layers']
    by_param, groups = build_groups(model)
    check_group_invariants(model, by_param, groups)
    backbone = model.backbone
    found_blocks = set()
    for name, param in model.named_parameters():
        group = by_param[id(param)]
        if name.startswith('backbone.'):
            # mmpretrain's own ViT depth rule is the independent reference
            depth, max_depth = backbone.get_layer_depth(name, prefix='backbone.')
            assert max_depth == n + 2
            assert group['lr_scale'] == pytest.approx(RATE**(n + 1 - depth)), name
            if name.startswith('backbone.layers.'):
                found_blocks.add(int(name.split('.')[2]))
        else:
            assert name.split('.')[0] in ('neck', 'rpn_head', 'roi_head'), name
            assert group['lr_scale'] == 1.0, name  # layer N + 1
        assert group['weight_decay'] == expected_wd(name, param), name
    assert found_blocks == set(range(n))


# ------------------------------------------------------------- rule edge cases
class _Neck(nn.Module):

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(32, 8), nn.Linear(8, 8)])
        self.blocks = nn.ModuleList([nn.Linear(8, 8)])


def _timm_vit(depth=2):
    import timm
    return timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=depth, num_heads=2,
        num_classes=0)


class _Detector(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = _timm_vit(depth=3)
        self.neck = _Neck()
        self.teacher = _timm_vit(depth=3)
        self.teacher.requires_grad_(False)


def test_block_index_only_read_inside_backbone_and_frozen_skipped():
    model = _Detector()
    by_param, groups = build_groups(model)
    check_group_invariants(model, by_param, groups)
    params = dict(model.named_parameters())
    scale = {n: by_param[id(p)]['lr_scale'] for n, p in params.items()
             if p.requires_grad}
    assert scale['neck.layers.0.weight'] == 1.0
    assert scale['neck.blocks.0.weight'] == 1.0
    assert scale['backbone.blocks.0.attn.qkv.weight'] == pytest.approx(RATE**3)
    assert scale['backbone.blocks.2.mlp.fc2.bias'] == pytest.approx(RATE)
    assert scale['backbone.cls_token'] == pytest.approx(RATE**4)
    assert scale['backbone.patch_embed.proj.weight'] == pytest.approx(RATE**4)
    assert scale['backbone.norm.weight'] == 1.0
    assert not any(n.startswith('teacher.') for n in scale)  # frozen: skipped


def test_bare_vit_and_num_layers_from_config():
    model = _timm_vit(depth=2)
    derived, _ = build_groups(model)
    given, _ = build_groups(model, num_layers=2)
    for p in model.parameters():
        assert derived[id(p)]['lr_scale'] == given[id(p)]['lr_scale']
    assert derived[id(model.blocks[0].attn.qkv.weight)]['lr_scale'] == \
        pytest.approx(RATE**2)
    with pytest.raises(ValueError, match=r'num_layers=12 .* has 2 blocks'):
        build_groups(model, num_layers=12)


def test_backbone_prefix_for_wrapped_vit():

    class Wrapper(nn.Module):

        def __init__(self):
            super().__init__()
            self.vit = _timm_vit(depth=2)

    model = nn.Module()
    model.backbone = Wrapper()
    model.head = nn.Linear(32, 3)
    with pytest.raises(ValueError, match="cannot identify the ViT blocks.*'backbone.'"):
        build_groups(model)
    by_param, _ = build_groups(model, backbone_prefix='backbone.vit.')
    vit = model.backbone.vit
    assert by_param[id(vit.blocks[1].mlp.fc1.weight)]['lr_scale'] == pytest.approx(RATE)
    assert by_param[id(vit.pos_embed)]['lr_scale'] == pytest.approx(RATE**3)
    assert by_param[id(model.head.weight)]['lr_scale'] == 1.0


def test_non_vit_model_raises():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3))
    with pytest.raises(ValueError, match='cannot identify the ViT blocks of Sequential'):
        build_groups(model)
    model = nn.Module()
    model.backbone = nn.Sequential(nn.Conv2d(3, 8, 3))
    with pytest.raises(ValueError, match="no parameter under 'backbone.'"):
        build_groups(model)


def test_custom_keys():
    model = _timm_vit(depth=2)
    by_param, groups = build_groups(model, custom_keys={
        'blocks.0.attn': dict(lr_mult=0.5, decay_mult=0.),
        'blocks.0': dict(lr_mult=3.),
        'pos_embed': dict(decay_mult=1.),
        'norm': dict(lr_mult=2.),
    })
    qkv = by_param[id(model.blocks[0].attn.qkv.weight)]
    assert qkv['lr_scale'] == pytest.approx(RATE**2 * 0.5)
    assert qkv['weight_decay'] == 0.
    assert by_param[id(model.pos_embed)]['weight_decay'] == WD  # overrides the rule
    assert by_param[id(model.pos_embed)]['lr_scale'] == pytest.approx(RATE**3)
    # lr_mult multiplies the layer scale; without decay_mult the no-decay rule holds
    assert by_param[id(model.norm.weight)]['lr_scale'] == pytest.approx(2.0)
    assert by_param[id(model.blocks[1].norm1.bias)]['lr_scale'] == pytest.approx(2 * RATE)
    assert by_param[id(model.blocks[1].norm1.bias)]['weight_decay'] == 0.
    # the longest matching key wins: 'blocks.0' over 'norm', 'blocks.0.attn' over both
    assert by_param[id(model.blocks[0].norm1.weight)]['lr_scale'] == \
        pytest.approx(RATE**2 * 3)
    fc1 = by_param[id(model.blocks[0].mlp.fc1.weight)]
    assert fc1['lr_scale'] == pytest.approx(RATE**2 * 3) and fc1['weight_decay'] == WD
    keys = [(g['lr'], g['weight_decay']) for g in groups]
    assert len(keys) == len(set(keys))


def test_custom_fields_are_copied_and_split_groups():
    model = _timm_vit(depth=2)
    by_param, groups = build_groups(model, custom_keys={'mlp.fc1': dict(eps=1e-6)})
    fc1 = by_param[id(model.blocks[1].mlp.fc1.weight)]
    fc2 = by_param[id(model.blocks[1].mlp.fc2.weight)]
    assert fc1['eps'] == 1e-6 and fc1 is not fc2
    assert fc1['lr'] == fc2['lr'] and fc1['weight_decay'] == fc2['weight_decay']


@pytest.mark.parametrize('paramwise, match', [
    (dict(), 'layer_decay_rate is required'),
    (dict(layer_decay_rate=0.), r'layer_decay_rate must be in \(0, 1\]'),
    (dict(layer_decay_rate=0.7, norm_decay_mult=1.), 'norm_decay_mult=1.0'),
    (dict(layer_decay_rate=0.7, decay_type='layer_wise'),
     r"unsupported keys \['decay_type'\]"),
    (dict(layer_decay_rate=0.7, num_layers=0), 'num_layers must be a positive int'),
])
def test_bad_paramwise_cfg(paramwise, match):
    with pytest.raises(ValueError, match=match):
        ViTLayerDecayOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW', lr=LR, weight_decay=WD)), paramwise)


def test_zero_decay_mults_of_mmpretrain_configs_are_accepted():
    model = _timm_vit(depth=2)
    plain, _ = build_groups(model)
    ported, _ = build_groups(model, norm_decay_mult=0., flat_decay_mult=0.,
                             bias_decay_mult=0.)
    for p in model.parameters():
        assert plain[id(p)]['weight_decay'] == ported[id(p)]['weight_decay']


def test_summary_is_logged(monkeypatch):
    messages = []
    monkeypatch.setattr(ldc_module, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    _, groups = build_groups(_timm_vit(depth=2))
    assert len(messages) == 1
    lines = messages[0].splitlines()
    assert "prefix ''" in lines[0] and 'N=2 blocks (derived)' in lines[0]
    assert f'{len(groups)} groups' in lines[0]
    assert len(lines) == 2 + len(groups)
