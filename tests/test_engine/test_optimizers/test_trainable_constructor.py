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


def test_equal_groups_merged_with_the_same_updates():
    from mmengine.optim import DefaultOptimWrapperConstructor

    from sdae_mm.engine.optimizers.trainable_constructor import merge_param_groups

    def build(constructor):
        torch.manual_seed(0)
        model = MODELS.build(tiny_sdae_cfg())
        cfg = dict(type='OptimWrapper', constructor=constructor,
                   optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.04),
                   paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0.,
                                      flat_decay_mult=0.))
        return model, build_optim_wrapper(model, cfg)

    model, optim = build('TrainableOptimWrapperConstructor')
    ref_model, ref_optim = build(DefaultOptimWrapperConstructor.__name__)
    # two groups: decayed (>= 2-D weights, tokens) and not decayed (biases, norms), plus
    # the option-only group that mmengine's OptimWrapper adds to record the base lr
    groups = [g for g in optim.param_groups
              if any(isinstance(p, torch.nn.Parameter) for p in g['params'])]
    assert sorted(g['weight_decay'] for g in groups) == [0., 0.04]
    assert len(optim.param_groups) == 3
    in_optim = [id(p) for g in optim.param_groups for p in g['params']]
    assert len(in_optim) == len(set(in_optim))
    assert {id(p) for p in model.parameters() if p.requires_grad} <= set(in_optim)
    assert len(ref_optim.param_groups) > 10 * len(optim.param_groups)
    for _ in range(3):
        for m, o in ((model, optim), (ref_model, ref_optim)):
            o.update_params(sum(((p - 0.1)**3).sum()
                                for p in m.parameters() if p.requires_grad))
    for (name, p), (_, q) in zip(model.named_parameters(), ref_model.named_parameters()):
        if p.requires_grad:
            assert torch.equal(p, q), name
    # groups keep first-appearance order and parameter order
    groups = [dict(params=[1], lr=1.), dict(params=[2], lr=2.), dict(params=[3], lr=1.)]
    assert merge_param_groups(groups) == [dict(params=[1, 3], lr=1.), dict(params=[2], lr=2.)]
