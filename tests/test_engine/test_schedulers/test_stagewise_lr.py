import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmpretrain.registry import PARAM_SCHEDULERS

from sdae_mm.engine.schedulers import StagewiseCosineLR


def official_dbot_lr(epoch, lr, min_lr, warmup_epochs, stage_epochs):
    """util/lr_sched.py of liuxingbin/dbot (adjust_learning_rate), re-typed for the test."""
    args = SimpleNamespace(lr=lr, min_lr=min_lr, warmup_epochs=warmup_epochs,
                           stage_epochs=stage_epochs)
    end_epoch = 0.0
    for index, num in enumerate(args.stage_epochs):
        if epoch < num:
            start_epoch = args.stage_epochs[index - 1]
            end_epoch = num - start_epoch
            epoch -= start_epoch
            break
    if epoch < args.warmup_epochs:
        return args.lr * epoch / args.warmup_epochs
    return args.min_lr + (args.lr - args.min_lr) * 0.5 * (
        1. + math.cos(math.pi * (epoch - args.warmup_epochs) / (end_epoch - args.warmup_epochs)))


def _optim(lr=2.4e-3):
    return OptimWrapper(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=lr))


def _values(sched, optim, steps):
    out = [optim.param_groups[0]['lr']]
    for _ in range(steps - 1):
        optim.step()
        sched.step()
        out.append(optim.param_groups[0]['lr'])
    return out


def test_per_iteration_values_equal_official_two_stage_schedule():
    iters_per_epoch, stages = 3, [0, 10, 20]
    optim = _optim()
    # what mmengine's Runner does for by_epoch=True, convert_to_iter_based=True
    sched = StagewiseCosineLR.build_iter_from_epoch(
        optim, stage_epochs=stages, warmup_epochs=2, epoch_length=iters_per_epoch)
    got = _values(sched, optim, 20 * iters_per_epoch)
    ref = [official_dbot_lr(i / iters_per_epoch, 2.4e-3, 0., 2, stages)
           for i in range(20 * iters_per_epoch)]
    for i, (a, b) in enumerate(zip(got, ref)):
        assert a == pytest.approx(b, abs=1e-15), i
    # the second stage restarts with a warm-up from 0
    assert got[0] == 0 and got[10 * iters_per_epoch] == 0
    assert got[2 * iters_per_epoch] == pytest.approx(2.4e-3)
    assert got[12 * iters_per_epoch] == pytest.approx(2.4e-3)


def test_single_schedule_when_not_per_stage():
    optim = _optim(1.0)
    sched = StagewiseCosineLR.build_iter_from_epoch(
        optim, stage_epochs=[0, 10, 20], warmup_epochs=2, per_stage=False, epoch_length=1)
    got = _values(sched, optim, 20)
    ref = [official_dbot_lr(e, 1.0, 0., 2, [0, 20]) for e in range(20)]
    assert got == pytest.approx(ref, abs=1e-15)
    assert got[10] > 0.5  # no restart at the inner boundary


def test_state_dict_resumes_exactly():
    optim = _optim(1.0)
    sched = StagewiseCosineLR.build_iter_from_epoch(
        optim, stage_epochs=[0, 4, 8], warmup_epochs=1, epoch_length=2)
    _values(sched, optim, 7)
    state = sched.state_dict()
    rest = _values(sched, optim, 5)
    optim2 = _optim(1.0)
    sched2 = StagewiseCosineLR.build_iter_from_epoch(
        optim2, stage_epochs=[0, 4, 8], warmup_epochs=1, epoch_length=2)
    sched2.load_state_dict(state)
    optim2.param_groups[0]['lr'] = rest[0]  # restored from the optimizer's state dict
    assert _values(sched2, optim2, 5) == rest


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match='stage_epochs must start with 0'):
        StagewiseCosineLR(_optim(), stage_epochs=[1, 5])
    with pytest.raises(ValueError, match='warmup_epochs=5 must be in'):
        StagewiseCosineLR(_optim(), stage_epochs=[0, 5, 10], warmup_epochs=5)
    with pytest.raises(ValueError, match='needs epoch_length'):
        StagewiseCosineLR(_optim(), stage_epochs=[0, 5], warmup_epochs=1, by_epoch=False)


def test_registered_where_mmpretrain_configs_find_it():
    assert PARAM_SCHEDULERS.get('StagewiseCosineLR') is StagewiseCosineLR
