"""The no-decay rules of the layer-decay constructor, per transfer protocol, against each
protocol's own reference, on the models and optimizer settings of the benchmark configs.

- ``'mae'``: MAE's ``param_groups_lrd`` (util/lr_decay.py of facebookresearch/mae, copied by
  SdAE, dBOT and RC-MAE), re-implemented below from reading it;
- ``'beit'``: mmseg's installed ``LayerDecayOptimizerConstructor``, the same code as BEiT's,
  mae_segmentation's, iBOT's, CAE's and dBOT's ``mmcv_custom`` constructor, and (for the
  detectors) CAE's constructor re-implemented below from reading it;
- ``'vitdet'``: detectron2's ``get_default_optimizer_params`` with ViTDet's
  ``get_vit_lr_decay_rate``, re-implemented below from reading them.

The models are built on the meta device (full size, no memory), the optimizer with
``mmengine.optim.build_optim_wrapper`` as ``Runner.build_optim_wrapper`` does.
"""
import contextlib
import glob
import os.path as osp

import pytest
import torch.nn as nn

from sdae_mm.engine.optimizers import ViTLayerDecayOptimWrapperConstructor
from sdae_mm.checkpoint.names import mmpretrain_to_timm_key
from tests.helpers.builders import ROOT, build_from_config, groups_by_param
CLS = 'configs/benchmarks/classification'
SEG = 'configs/benchmarks/segmentation'
DET = 'configs/benchmarks/detection'
FINETUNE = sorted(
    osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, CLS, '*_in1k.py'))
    if 'linear' not in p)
BEIT_RULE = [
    (f'{SEG}/upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py', 'mmseg'),
    (f'{SEG}/upernet_vit-l-p16_8xb2-amp-160k_ade20k-512x512.py', 'mmseg'),
    (f'{SEG}/dbot_upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py', 'mmseg'),
    (f'{DET}/mask-rcnn_vit-b-p16_fpn_16xb2-ms-1x_coco.py', 'mmdet'),
    (f'{DET}/mask-rcnn_vit-b-p16_fpn_8xb2-ms-3x_coco.py', 'mmdet'),
    (f'{DET}/dbot_cascade-mask-rcnn_vit-b-p16_fpn_8xb2-ms-1x_coco.py', 'mmdet'),
    (f'{DET}/dbot_cascade-mask-rcnn_vit-l-p16_fpn_8xb2-ms-1x_coco.py', 'mmdet'),
]
VITDET = f'{DET}/vitdet_mask-rcnn_vit-b-p16_simplefpn_16xb4-lsj-100e_coco.py'


# ------------------------------------------------------------------------- 'mae'
def mae_param_groups_lrd(named_params, weight_decay, no_weight_decay_list, layer_decay,
                         depth):
    """MAE's param_groups_lrd on timm names: {name: (lr_scale, weight_decay)}."""
    num_layers = depth + 1

    def layer_id(name):
        if name in ('cls_token', 'pos_embed'):
            return 0
        if name.startswith('patch_embed'):
            return 0
        if name.startswith('blocks'):
            return int(name.split('.')[1]) + 1
        return num_layers

    out = {}
    for name, p in named_params:
        decay = 0. if (p.ndim == 1 or name in no_weight_decay_list) else weight_decay
        out[name] = (layer_decay**(num_layers - layer_id(name)), decay)
    return out


def timm_name(name):
    """Name of an mmpretrain ImageClassifier parameter in MAE's fine-tuning ViT."""
    if name.startswith('head.'):
        return 'head.' + name.rsplit('.', 1)[-1]
    rest = name[len('backbone.'):]
    if rest.startswith('ln2.'):  # global pool's norm (MAE: fc_norm)
        return 'fc_norm.' + rest[len('ln2.'):]
    return mmpretrain_to_timm_key(rest)


@pytest.mark.parametrize('path', FINETUNE, ids=osp.basename)
def test_mae_rule_equals_param_groups_lrd_of_finetune_configs(path):
    cfg, model, wrapper = build_from_config(path, 'mmpretrain')
    paramwise = cfg.optim_wrapper.paramwise_cfg
    assert paramwise.get('no_decay_rule', 'mae') == 'mae'
    lr = cfg.optim_wrapper.optimizer.lr
    wd = cfg.optim_wrapper.optimizer.weight_decay
    rate = paramwise.layer_decay_rate
    depth = len(model.backbone.layers)
    named = [(timm_name(n), p) for n, p in model.named_parameters()]
    # timm's VisionTransformer.no_weight_decay() of MAE's code
    ref = mae_param_groups_lrd(named, wd, {'pos_embed', 'cls_token', 'dist_token'}, rate,
                               depth)
    by_param = groups_by_param(wrapper.optimizer)
    assert len(by_param) == len(named)
    exempt = set()
    for (name, param) in named:
        group = by_param[id(param)]
        scale, decay = ref[name]
        assert group['lr'] == pytest.approx(lr * scale, rel=1e-12), name
        assert group['weight_decay'] == decay, name
        if decay == 0:
            exempt.add(name)
    assert {'pos_embed', 'cls_token', 'blocks.0.attn.qkv.bias', 'fc_norm.weight',
            'head.bias'} <= exempt
    assert 'blocks.0.attn.qkv.weight' not in exempt


# ------------------------------------------------------------------------ 'beit'
@contextlib.contextmanager
def backbone_named_for_mmseg(model):
    """mmseg's constructor picks its ViT layer rule from the backbone's class name
    ('BEiT'/'MAE'); give the backbone such a name for the duration."""
    cls = type(model.backbone)
    model.backbone.__class__ = type(f'MAE{cls.__name__}', (cls, ), {})
    try:
        yield
    finally:
        model.backbone.__class__ = cls


@pytest.mark.parametrize('path, scope', BEIT_RULE, ids=lambda x: osp.basename(x))
def test_beit_rule_equals_mmseg_layer_decay_constructor(path, scope):
    from mmseg.engine.optimizers import LayerDecayOptimizerConstructor

    cfg, model, wrapper = build_from_config(path, scope)
    paramwise = cfg.optim_wrapper.paramwise_cfg
    assert paramwise.no_decay_rule == 'beit'
    optimizer = dict(cfg.optim_wrapper.optimizer)
    reference = LayerDecayOptimizerConstructor(
        dict(optimizer=optimizer),
        dict(num_layers=paramwise.num_layers, layer_decay_rate=paramwise.layer_decay_rate))
    with backbone_named_for_mmseg(model):
        ref_optimizer = reference(model).optimizer
    ours, ref = groups_by_param(wrapper.optimizer), groups_by_param(ref_optimizer)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert set(ours) == set(ref) and len(ours) == len(names)
    decayed = set()
    for name, param in model.named_parameters():
        assert ours[id(param)]['lr'] == pytest.approx(ref[id(param)]['lr'], rel=1e-12), name
        assert ours[id(param)]['weight_decay'] == ref[id(param)]['weight_decay'], name
        if ours[id(param)]['weight_decay'] > 0:
            decayed.add(name)
    # what distinguishes the rule from MAE's: position embedding, class token and
    # relative position tables are decayed
    assert {'backbone.pos_embed', 'backbone.cls_token'} <= decayed
    tables = {n for n in names if n.endswith('relative_position_bias_table')}
    assert tables <= decayed and (tables or scope == 'mmdet')
    assert not any(n.endswith('.bias') or n.endswith('gamma_1') for n in decayed)


def cae_layer_decay_params(model, base_lr, weight_decay, num_layers, layer_decay_rate):
    """CAE's (= iBOT's) mmcv ``LayerDecayOptimizerConstructor.add_params`` on CAE names
    (the ViT's blocks are ``backbone.blocks.i``): {param id: (lr, weight decay)}."""
    num_max_layer = num_layers + 2

    def get_num_layer_for_vit(var_name):
        if var_name in ('backbone.cls_token', 'backbone.mask_token', 'backbone.pos_embed'):
            return 0
        if var_name.startswith('backbone.patch_embed'):
            return 0
        if var_name.startswith('backbone.blocks'):
            return int(var_name.split('.')[2]) + 1
        return num_max_layer - 1

    out = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        cae_name = name.replace('backbone.layers.', 'backbone.blocks.', 1)
        no_decay = (len(param.shape) == 1 or cae_name.endswith('.bias')
                    or cae_name in ('pos_embed', 'cls_token'))
        scale = layer_decay_rate**(num_max_layer - get_num_layer_for_vit(cae_name) - 1)
        out[id(param)] = (scale * base_lr, 0. if no_decay else weight_decay)
    return out


@pytest.mark.parametrize('path', [p for p, scope in BEIT_RULE if scope == 'mmdet'],
                         ids=osp.basename)
def test_beit_rule_equals_cae_constructor_on_detectors(path):
    cfg, model, wrapper = build_from_config(path, 'mmdet')
    paramwise = cfg.optim_wrapper.paramwise_cfg
    ref = cae_layer_decay_params(model, cfg.optim_wrapper.optimizer.lr,
                                 cfg.optim_wrapper.optimizer.weight_decay,
                                 paramwise.num_layers, paramwise.layer_decay_rate)
    ours = groups_by_param(wrapper.optimizer)
    assert set(ours) == set(ref)
    for name, param in model.named_parameters():
        lr, decay = ref[id(param)]
        assert ours[id(param)]['lr'] == pytest.approx(lr, rel=1e-12), name
        assert ours[id(param)]['weight_decay'] == decay, name


# ---------------------------------------------------------------------- 'vitdet'
# detectron2.solver.build.get_default_optimizer_params: the norm layers it exempts
D2_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
                 nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
                 nn.LayerNorm, nn.LocalResponseNorm)


def d2_vit_lr_decay_rate(name, lr_decay_rate, num_layers):
    """detectron2.modeling.backbone.vit.get_vit_lr_decay_rate (detectron2 names)."""
    layer_id = num_layers + 1
    if name.startswith('backbone'):
        if '.pos_embed' in name or '.patch_embed' in name:
            layer_id = 0
        elif '.blocks.' in name and '.residual.' not in name:
            layer_id = int(name[name.find('.blocks.'):].split('.')[2]) + 1
    return lr_decay_rate**(num_layers + 1 - layer_id)


def d2_default_optimizer_params(model, base_lr, weight_decay_norm, lr_factor_func,
                                overrides, is_norm):
    """get_default_optimizer_params: {param id: hyper-parameters}; a missing
    'weight_decay' means the optimizer's default."""
    params, memo = {}, set()
    for module_name, module in model.named_modules():
        for param_name, value in module.named_parameters(recurse=False):
            if not value.requires_grad or id(value) in memo:
                continue
            memo.add(id(value))
            hyper = dict(lr=base_lr)
            if is_norm(module) and weight_decay_norm is not None:
                hyper['weight_decay'] = weight_decay_norm
            hyper['lr'] *= lr_factor_func(f'{module_name}.{param_name}')
            hyper.update(overrides.get(param_name, {}))
            params[id(value)] = hyper
    return params


def d2_name(name):
    """detectron2 name of a parameter: the ViT is ``backbone.net``, blocks ``blocks.i``."""
    if name.startswith('backbone.'):
        rest = name[len('backbone.'):]
        if rest.startswith('layers.'):
            rest = 'blocks.' + rest[len('layers.'):]
        return 'backbone.net.' + rest
    return name


def test_vitdet_rule_equals_detectron2_optimizer_params():
    from sdae_mm.downstream.det import LayerNorm2d

    cfg, model, wrapper = build_from_config(VITDET, 'mmdet')
    paramwise = cfg.optim_wrapper.paramwise_cfg
    assert paramwise.no_decay_rule == 'vitdet'
    lr = cfg.optim_wrapper.optimizer.lr
    wd = cfg.optim_wrapper.optimizer.weight_decay
    assert (lr, wd, paramwise.layer_decay_rate) == (1e-4, 0.1, 0.7)

    def is_norm(module):
        # LN2d stands for detectron2.layers.LayerNorm (SimpleFeaturePyramid, RoI heads), a
        # plain nn.Module that is not among the norm types
        return isinstance(module, D2_NORM_TYPES) and not isinstance(module, LayerNorm2d)

    # projects/ViTDet/configs/COCO/mask_rcnn_vitdet_b_100ep.py + configs/common/optim.py
    ref = d2_default_optimizer_params(
        model, base_lr=1e-4, weight_decay_norm=0.0,
        lr_factor_func=lambda n: d2_vit_lr_decay_rate(d2_name(n), 0.7, 12),
        overrides={'pos_embed': {'weight_decay': 0.0}}, is_norm=is_norm)
    ours = groups_by_param(wrapper.optimizer)
    assert set(ours) == set(ref)
    exempt = set()
    for name, param in model.named_parameters():
        assert ours[id(param)]['lr'] == pytest.approx(ref[id(param)]['lr'], rel=1e-12), name
        assert ours[id(param)]['weight_decay'] == ref[id(param)].get('weight_decay', wd), name
        if ours[id(param)]['weight_decay'] == 0:
            exempt.add(name)
    # what distinguishes the rule: biases, relative position tables and the channel
    # LayerNorms of the pyramid and heads are decayed; block LayerNorms are not
    assert exempt >= {'backbone.pos_embed', 'backbone.layers.0.ln1.weight',
                      'backbone.layers.11.ln2.bias'}
    for name in ('backbone.layers.0.attn.rel_pos_h', 'backbone.layers.0.attn.qkv.bias',
                 'neck.lateral_convs.0.ln.weight', 'roi_head.mask_head.convs.0.ln.bias',
                 'rpn_head.rpn_cls.bias'):
        assert name not in exempt, name
    assert all(n.startswith('backbone.') for n in exempt)


# ------------------------------------------------------------------- validation
def test_unknown_rule_is_a_clear_error():
    with pytest.raises(ValueError, match=r"no_decay_rule must be one of \['mae', 'beit', "
                       r"'vitdet'\], got 'mmseg'"):
        ViTLayerDecayOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)),
            dict(layer_decay_rate=0.65, no_decay_rule='mmseg'))


def test_decay_mults_only_with_the_mae_rule():
    with pytest.raises(ValueError, match="norm_decay_mult is not supported with "
                       "no_decay_rule='vitdet'"):
        ViTLayerDecayOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)),
            dict(layer_decay_rate=0.65, no_decay_rule='vitdet', norm_decay_mult=0.))
