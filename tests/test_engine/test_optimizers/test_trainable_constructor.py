import torch
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS

from tests.helpers.models import tiny_sdae_cfg


def test_teacher_left_out_and_decay_groups_as_default():
    model = MODELS.build(tiny_sdae_cfg())
    cfg = dict(type='OptimWrapper', constructor='TrainableOptimWrapperConstructor',
               optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.04),
               paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0., flat_decay_mult=0.))
    optim = build_optim_wrapper(model, cfg)
    in_optim = {id(p) for g in optim.param_groups for p in g['params']}
    assert not any(id(p) in in_optim for p in model.teacher.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} <= in_optim
    wd = {id(p): g['weight_decay'] for g in optim.param_groups for p in g['params']}
    assert wd[id(model.backbone.layers[0].attn.qkv.weight)] == 0.04
    assert wd[id(model.backbone.layers[0].attn.qkv.bias)] == 0.
    assert wd[id(model.backbone.layers[0].ln1.weight)] == 0.
    assert wd[id(model.backbone.cls_token)] == 0.04  # decayed, as timm's add_weight_decay
    assert wd[id(model.neck.mask_token)] == 0.04
