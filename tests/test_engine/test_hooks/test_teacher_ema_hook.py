import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

from sdae_mm.engine.hooks import TeacherEMAHook
from sdae_mm.models.utils import cosine_momentum


def official_cosine_scheduler(base, final, epochs, niter_per_ep, warmup_epochs=0,
                              start_warmup_value=0):
    """The official SdAE util/cosine_scheduler.py equations, re-typed for the test."""
    warmup = np.array([])
    warmup_iters = warmup_epochs * niter_per_ep
    if warmup_epochs > 0:
        warmup = np.linspace(start_warmup_value, base, warmup_iters)
    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    sched = final + 0.5 * (base - final) * (1 + np.cos(np.pi * iters / len(iters)))
    return np.concatenate((warmup, sched))


def test_schedule_first_middle_last_epoch():
    ref = official_cosine_scheduler(0.96, 0.99, 300, 1)
    assert cosine_momentum(0, 300, 0.96, 0.99) == pytest.approx(0.96, abs=1e-12)
    assert cosine_momentum(150, 300, 0.96, 0.99) == pytest.approx(0.975, abs=1e-12)
    last = 0.99 + 0.5 * (0.96 - 0.99) * (1 + math.cos(math.pi * 299 / 300))
    assert cosine_momentum(299, 300, 0.96, 0.99) == pytest.approx(last, abs=1e-12)
    for e in range(300):
        assert cosine_momentum(e, 300, 0.96, 0.99) == pytest.approx(ref[e], abs=1e-12)


def test_schedule_with_warmup_matches_official():
    ref = official_cosine_scheduler(0.96, 0.99, 50, 1, warmup_epochs=5, start_warmup_value=0.9)
    got = [cosine_momentum(e, 50, 0.96, 0.99, 5, 0.9) for e in range(50)]
    np.testing.assert_allclose(got, ref, atol=1e-12)


class _Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.student = nn.Linear(3, 2)
        self.teacher = nn.Linear(3, 2)
        self.calls = []

    def update_teacher(self, m):
        self.calls.append(m)


def _runner(epoch=0, it=0, max_epochs=300, max_iters=3000):
    hub = SimpleNamespace(update_scalar=lambda *a, **k: None)
    return SimpleNamespace(model=_Model(), epoch=epoch, iter=it, max_epochs=max_epochs,
                           max_iters=max_iters, message_hub=hub)


def test_hook_per_epoch_uses_epoch_value():
    hook = TeacherEMAHook(0.96, 0.99, update_interval='epoch')
    runner = _runner(epoch=150)
    hook.after_train_iter(runner, 0)
    assert runner.model.calls == []  # not per iteration
    hook.after_train_epoch(runner)
    assert runner.model.calls == [pytest.approx(0.975)]


def test_hook_per_iter_official_sdae_uses_epoch_value_every_iter():
    hook = TeacherEMAHook(0.96, 0.99, update_interval='iter', schedule_unit='epoch')
    runner = _runner(epoch=150, it=1234)
    hook.after_train_iter(runner, 5)
    hook.after_train_iter(runner, 6)
    assert runner.model.calls == [pytest.approx(0.975)] * 2
    hook.after_train_epoch(runner)
    assert len(runner.model.calls) == 2


def test_hook_schedule_units_iter_and_epoch_step():
    runner = _runner(epoch=3, it=1500, max_iters=3000)
    TeacherEMAHook(0.996, 1.0, 'iter', 'iter').after_train_iter(runner, 7)
    TeacherEMAHook(0.996, 1.0, 'iter', 'epoch_step').after_train_iter(runner, 7)
    assert runner.model.calls[0] == pytest.approx(cosine_momentum(1500, 3000, 0.996, 1.0))
    assert runner.model.calls[1] == pytest.approx(cosine_momentum(7, 3000, 0.996, 1.0))


def test_hook_checkpoint_state_roundtrip():
    hook = TeacherEMAHook(0.96, 0.99)
    runner = _runner(epoch=10)
    hook.after_train_epoch(runner)
    ckpt = {}
    hook.before_save_checkpoint(runner, ckpt)
    other = TeacherEMAHook(0.96, 0.99)
    other.after_load_checkpoint(runner, ckpt)
    assert other.num_updates == 1
    assert other.last_momentum == pytest.approx(cosine_momentum(10, 300, 0.96, 0.99))


@pytest.mark.parametrize('kwargs,match', [
    (dict(momentum=1.5), 'momentum must be in'),
    (dict(update_interval='step'), 'update_interval'),
    (dict(update_interval='epoch', schedule_unit='iter'), "needs schedule_unit='epoch'"),
])
def test_hook_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TeacherEMAHook(**kwargs)


def test_ema_arithmetic_matches_official_update():
    from mmpretrain.registry import MODELS

    from tests.helpers.models import tiny_sdae_cfg
    model = MODELS.build(tiny_sdae_cfg())
    model.init_weights()
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.update_teacher(0.9)
    for k, v in model.teacher.state_dict().items():
        expected = before[k].clone().mul_(0.9).add_((1 - 0.9) * student[k])
        torch.testing.assert_close(v, expected, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match='EMA momentum'):
        model.update_teacher(1.2)
