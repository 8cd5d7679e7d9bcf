import copy
from types import SimpleNamespace

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS

from sdae_mm.engine.hooks import DBOTStageHook

TINY_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def _model(teacher_depths=(1, 2)):
    vit = dict(type='MIMVisionTransformer', arch=TINY_ARCH, img_size=32, patch_size=8)
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='DBOT', backbone=vit,
        neck=dict(type='MIMDecoder', num_patches=16, in_channels=32, out_channels=32,
                  embed_dims=16, num_layers=1, num_heads=2),
        head=dict(type='MaskedFeatureDistillHead', loss=dict(type='MaskedSmoothL1Loss')),
        teacher_depths=teacher_depths))
    model.init_weights()
    return model


def _runner_after_one_step(epoch, max_epochs=4):
    """A runner stand-in whose AdamW has state from one real step of the student."""
    model = _model()
    optim = OptimWrapper(torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-3))
    loss = sum((p**2).sum() for p in model.backbone.parameters() if p.requires_grad)
    optim.update_params(loss)
    return SimpleNamespace(model=model, optim_wrapper=optim, epoch=epoch, max_epochs=max_epochs)


def test_stage_epochs_are_validated():
    for bad in ([800, 1600], [0], [0, 800, 800], [0, 900, 800]):
        with pytest.raises(ValueError, match='stage_epochs must start with 0'):
            DBOTStageHook(bad)


@pytest.mark.parametrize('reset_optimizer', [False, True])
def test_switch_at_boundary_only(reset_optimizer):
    hook = DBOTStageHook([0, 2, 4], reset_optimizer=reset_optimizer)
    runner = _runner_after_one_step(epoch=0)
    model = runner.model
    state = {k: {n: v.clone() for n, v in s.items()}
             for k, s in runner.optim_wrapper.optimizer.state.items()}
    assert state
    hook.after_train_epoch(runner)  # epoch 1 finished: not a boundary
    assert model.current_stage == 0 and hook.num_switches == 0

    runner.epoch = 1  # epoch 2 finished: the boundary
    student = copy.deepcopy(model.backbone.state_dict())
    hook.after_train_epoch(runner)
    assert model.current_stage == 1 and model.teacher_depth() == 2 and hook.num_switches == 1
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, student[k]), k
    assert not torch.equal(model.backbone.layers[0].attn.qkv.weight,
                           student['layers.0.attn.qkv.weight'])
    opt_state = runner.optim_wrapper.optimizer.state
    if reset_optimizer:
        assert len(opt_state) == 0
    else:  # official: the AdamW moments and step counts go on unchanged
        assert set(opt_state) == set(state)
        for p, s in state.items():
            for name, v in s.items():
                assert torch.equal(opt_state[p][name], v), name
        # the optimizer still holds the student's (re-initialised, same) parameter objects
        params = {id(p) for g in runner.optim_wrapper.param_groups for p in g['params']}
        assert id(model.backbone.layers[0].attn.qkv.weight) in params

    runner.epoch = 3  # the last epoch: no switch at the end of training
    hook.after_train_epoch(runner)
    assert model.current_stage == 1


def test_expected_stage_and_resume_check():
    hook = DBOTStageHook([0, 800, 1600])
    assert [hook.expected_stage(e, 1600) for e in (0, 799, 800, 1200, 1600)] == [0, 0, 1, 1, 1]
    runner = _runner_after_one_step(epoch=3, max_epochs=4)
    hook = DBOTStageHook([0, 2, 4])
    with pytest.raises(ValueError, match='model is in dBOT stage 0 but epoch 3 belongs to '
                                         'stage 1'):
        hook.before_train(runner)
    runner.model.start_next_stage()
    hook.before_train(runner)  # consistent
    runner.model = torch.nn.Linear(2, 2)
    with pytest.raises(TypeError, match='needs a DBOT model'):
        hook.before_train(runner)


def test_checkpoint_meta():
    hook = DBOTStageHook([0, 2, 4])
    runner = _runner_after_one_step(epoch=2)
    runner.model.start_next_stage()
    ckpt = {}
    hook.before_save_checkpoint(runner, ckpt)
    assert ckpt['meta']['dbot'] == dict(stage=1, stage_epochs=[0, 2, 4], reset_optimizer=False)
