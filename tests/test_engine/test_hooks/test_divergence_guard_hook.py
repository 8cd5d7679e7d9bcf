"""DivergenceGuardHook: a run whose weights blow up stops before saving a checkpoint and
names the last one safe to resume from."""
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner

from sdae_mm.engine.hooks import DivergenceGuardHook, add_divergence_guard


class ToyModel(BaseModel):
    """Loss ``scale * |w|^2``; a batch with a huge scale makes SGD blow the weights up."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(4))

    def forward(self, inputs, data_samples=None, mode='loss'):
        scale = torch.stack(inputs).max()
        return dict(loss=scale * (self.w**2).sum())


class ScaleDataset(torch.utils.data.Dataset):
    """Item ``i``: the loss scale, 1 except from ``diverge_at`` on."""

    def __init__(self, n=8, diverge_at=4):
        self.scales = [1. if i < diverge_at else 1e8 for i in range(n)]

    def __len__(self):
        return len(self.scales)

    def __getitem__(self, i):
        return dict(inputs=torch.tensor(self.scales[i]))


def _runner(work_dir):
    cfg = dict(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ScaleDataset(), batch_size=1, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=8),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2,
                                           by_epoch=False)),
        custom_hooks=[dict(type='DivergenceGuardHook')],
        default_scope='mmengine', experiment_name=f'guard{os.getpid()}{id(work_dir)}')
    return Runner(**cfg)


def test_stops_before_saving_a_diverged_checkpoint(tmp_path):
    runner = _runner(tmp_path)
    with pytest.raises(FloatingPointError) as err:
        runner.train()
    safe = osp.join(str(tmp_path), 'iter_4.pth')
    message = str(err.value)
    assert 'diverged at iteration 5' in message and 'parameter norm' in message
    assert f'the last checkpoint safe to resume from is {safe}' in message
    assert osp.isfile(safe) and not osp.exists(osp.join(str(tmp_path), 'iter_6.pth'))
    assert runner.message_hub.get_info('last_safe_checkpoint') == safe
    ckpt = torch.load(safe, map_location='cpu', weights_only=False)
    assert ckpt['state_dict']['w'].abs().max() < 10  # resuming from it is healthy


def test_checks_again_right_before_a_save():
    hub = MessageHub.get_instance('divergence_guard_unit')
    model = torch.nn.Linear(4, 4)
    runner = SimpleNamespace(model=model, message_hub=hub, iter=9, epoch=0)
    hook = DivergenceGuardHook(factor=10)
    hub.update_info('last_ckpt', '/ckpt/iter_5.pth')
    hook.before_save_checkpoint(runner, {})
    assert hook.saved == ['/ckpt/iter_5.pth']
    with torch.no_grad():
        model.weight.mul_(1e6)
    hub.update_info('last_ckpt', '/ckpt/iter_10.pth')
    with pytest.raises(FloatingPointError, match='its level at the last checkpoint.*no '
                       'checkpoint of this run was saved while it was healthy'):
        hook.before_save_checkpoint(runner, {})  # iter_5.pth does not exist here
    assert hook.saved == ['/ckpt/iter_5.pth']
    with torch.no_grad():
        model.weight.fill_(float('nan'))
    with pytest.raises(FloatingPointError, match='parameter norm is nan'):
        hook.after_train_iter(runner, 0)
    with pytest.raises(ValueError, match='factor'):
        DivergenceGuardHook(factor=1)


def test_running_level_after_warmup():
    hub = MessageHub.get_instance('divergence_guard_level')
    model = torch.nn.Linear(4, 4)
    runner = SimpleNamespace(model=model, message_hub=hub, iter=0, epoch=0)
    hook = DivergenceGuardHook(factor=10, warmup_iters=3)
    with torch.no_grad():
        for scale in (1., 5., 2.):  # moves within the warm-up are not judged
            model.weight.mul_(scale)
            hook.after_train_iter(runner, 0)
        model.weight.mul_(5.)  # 5x: healthy
        hook.after_train_iter(runner, 0)
        model.weight.mul_(100.)
    with pytest.raises(FloatingPointError, match='x its running level'):
        hook.after_train_iter(runner, 0)


def test_add_divergence_guard_once():
    from mmengine.config import Config
    cfg = Config(dict(custom_hooks=[dict(type='TeacherEMAHook')]))
    add_divergence_guard(cfg)
    add_divergence_guard(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == ['TeacherEMAHook', 'DivergenceGuardHook']
    empty = Config(dict())
    add_divergence_guard(empty)
    assert empty.custom_hooks == [dict(type='DivergenceGuardHook')]


def test_non_finite_loss_names_the_safe_checkpoint():
    from mmpretrain.registry import MODELS

    from tests.helpers.models import tiny_sdae_cfg
    model = MODELS.build(tiny_sdae_cfg())
    hub = MessageHub.get_current_instance()
    hub.update_info('last_safe_checkpoint', '/ckpt/epoch_3.pth')
    with pytest.raises(FloatingPointError, match='safe to resume from is /ckpt/epoch_3.pth'):
        model.parse_losses(dict(loss=torch.tensor(float('nan'))))
    hub.update_info('last_safe_checkpoint', None)
    with pytest.raises(FloatingPointError, match='No checkpoint was recorded as safe'):
        model.parse_losses(dict(loss=torch.tensor(float('inf'))))
