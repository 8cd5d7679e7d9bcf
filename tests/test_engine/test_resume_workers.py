"""Exact resume with data-loader workers: a resumed run draws the same crops and masks."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

DEMO_CFG = 'configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py'


class RecordBatchHook(Hook):
    """Keeps each iteration's loss, masks and a checksum of its images."""

    priority = 'LOWEST'

    def __init__(self):
        self.steps = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        ids = torch.stack([torch.as_tensor(s.ids_shuffle) for s in data_batch['data_samples']])
        imgs = torch.stack(list(data_batch['inputs'])).double()
        self.steps[runner.iter] = (float(outputs['loss'].detach()), ids, imgs.sum().item())


def _cfg(repo_root, demo_data, work_dir, sampler='SeededSampler'):
    cfg = Config.fromfile(osp.join(repo_root, DEMO_CFG))
    cfg.work_dir = str(work_dir)
    cfg.train_dataloader.dataset.data_root = osp.join(demo_data, 'cls')
    cfg.train_dataloader.dataset.indices = 16
    cfg.train_dataloader.batch_size = 8
    cfg.train_dataloader.num_workers = 2
    cfg.train_dataloader.persistent_workers = True
    cfg.train_dataloader.sampler.type = sampler
    cfg.train_cfg.max_epochs = 2
    cfg.param_scheduler[0].end = 1
    cfg.param_scheduler[1].begin = 1
    cfg.param_scheduler[1].T_max = 2
    cfg.param_scheduler[1].end = 3
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    return cfg


def _run(cfg, resume_from=None):
    cfg = copy.deepcopy(cfg)
    if resume_from:
        cfg.resume = True
        cfg.load_from = resume_from
    runner = Runner.from_cfg(cfg)
    recorder = RecordBatchHook()
    runner.register_hook(recorder)
    runner.train()
    return runner, recorder.steps


@pytest.mark.parametrize('sampler', ['SeededSampler', 'DefaultSampler'])
def test_resume_with_two_workers_draws_the_same_batches(repo_root, demo_data, tmp_path,
                                                        sampler):
    full, full_steps = _run(_cfg(repo_root, demo_data, tmp_path / 'full', sampler))
    resumed, resumed_steps = _run(_cfg(repo_root, demo_data, tmp_path / 'resumed', sampler),
                                  resume_from=str(tmp_path / 'full' / 'epoch_1.pth'))
    assert sorted(resumed_steps) == [2, 3]  # the two iterations of epoch 2
    same_masks = all(torch.equal(resumed_steps[i][1], full_steps[i][1]) for i in (2, 3))
    if sampler == 'DefaultSampler':
        # the control: the workers' streams restart on resume, so the masks differ
        assert not same_masks
        return
    assert same_masks
    for it in (2, 3):
        assert resumed_steps[it][2] == full_steps[it][2], f'images of iteration {it}'
        assert resumed_steps[it][0] == pytest.approx(full_steps[it][0], abs=1e-6)
    full_sd, resumed_sd = full.model.state_dict(), resumed.model.state_dict()
    for k in full_sd:
        torch.testing.assert_close(resumed_sd[k], full_sd[k], rtol=0, atol=1e-6, msg=k)
