"""Tests of sdae_mm.utils.workers: a finished runner's loader workers are stopped."""
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from sdae_mm.utils.workers import shutdown_dataloader_workers


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, mode='tensor'):
        inputs = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.fc(inputs)
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


def make_runner(tmp_path, train_cfg, persistent):
    loader = DataLoader([torch.ones(2)] * 8, batch_size=2, num_workers=2,
                        persistent_workers=persistent, collate_fn=lambda b: dict(inputs=b))
    return Runner(model=ToyModel(), work_dir=str(tmp_path), train_dataloader=loader,
                  experiment_name=f'workers_{tmp_path.name}',
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
                  train_cfg=train_cfg, default_hooks=dict(checkpoint=None, logger=None),
                  default_scope='mmengine')


def live_workers(runner):
    loop = runner._train_loop
    iterators = {id(it): it for it in (
        getattr(loop.dataloader, '_iterator', None),
        getattr(getattr(loop, 'dataloader_iterator', None), '_iterator', None))
        if it is not None and hasattr(it, '_workers')}
    return [w for it in iterators.values() for w in it._workers if w.is_alive()]


@pytest.mark.parametrize('train_cfg,persistent', [
    (dict(by_epoch=True, max_epochs=2), True),  # the loader keeps its workers
    (dict(by_epoch=False, max_iters=3), False),  # the endless iterator keeps them
])
def test_stops_the_workers_a_finished_runner_keeps(tmp_path, train_cfg, persistent):
    runner = make_runner(tmp_path, train_cfg, persistent)
    runner.train()
    workers = live_workers(runner)
    assert len(workers) == 2
    assert shutdown_dataloader_workers(runner) == 2
    assert not any(w.is_alive() for w in workers)
    assert live_workers(runner) == []
    assert shutdown_dataloader_workers(runner) == 0  # nothing left, no error
    # the loaders still work: new workers start when iterated again
    loop = runner._train_loop
    batch = next(loop.dataloader_iterator) if hasattr(loop, 'dataloader_iterator') \
        else next(iter(loop.dataloader))
    assert len(batch['inputs']) == 2
    shutdown_dataloader_workers(runner)


def test_leaves_unbuilt_loops_and_single_process_loaders_alone(tmp_path):
    runner = Runner(model=ToyModel(), work_dir=str(tmp_path),
                    experiment_name=f'workers_{tmp_path.name}',
                    train_dataloader=DataLoader([torch.ones(2)] * 4, batch_size=2,
                                                collate_fn=lambda b: dict(inputs=b)),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
                    train_cfg=dict(by_epoch=True, max_epochs=1),
                    default_hooks=dict(checkpoint=None, logger=None), default_scope='mmengine')
    assert shutdown_dataloader_workers(runner) == 0  # loops not built yet
    runner.train()
    assert shutdown_dataloader_workers(runner) == 0  # num_workers=0: no processes
