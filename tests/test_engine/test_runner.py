"""RecipeRunner: auto_scale_lr counts gradient accumulation (official eff_batch_size)."""
import copy
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from sdae_mm.engine.recipe import build_recipe_runner
from sdae_mm.engine.runner import RecipeRunner, build_runner

RCMAE_B = 'configs/rc_mae/rc_mae_vit-base-p16_8xb256-accum2-amp-coslr-1600e_in1k.py'
DEMO = 'configs/demo/rc_mae_vit-demo-p8_1xb64-40e_digits.py'


def _optim_wrapper(runner, cfg):
    ow = copy.deepcopy(cfg.optim_wrapper)
    ow.type = 'OptimWrapper'  # AmpOptimWrapper needs a GPU; the lr groups do not
    ow.pop('loss_scale')
    return runner.build_optim_wrapper(ow)


def test_rc_mae_vit_b_on_its_8_gpus_trains_at_the_official_lr(repo_root, tmp_path):
    """run_pretrain.py:258-261: lr = blr x (256 x 2 accum x 8 GPUs) / 256 = 2.4e-3."""
    cfg = Config.fromfile(osp.join(repo_root, RCMAE_B))
    assert cfg.runner_type == 'RecipeRunner'
    runner = build_recipe_runner(cfg, device='meta', work_dir=str(tmp_path))
    assert type(runner) is RecipeRunner
    ow = _optim_wrapper(runner, cfg)
    ratio = runner.scale_lr(ow, cfg.auto_scale_lr, world_size=8)
    assert ratio == 1.0
    assert all(g['lr'] == pytest.approx(1.5e-4 * 256 * 2 * 8 / 256) for g in ow.param_groups)
    assert runner.effective_batch_size(world_size=8, optim_wrapper=ow) == 4096
    # with 4 GPUs and the same accumulation, half the batch and half the lr
    ow = _optim_wrapper(runner, cfg)
    assert runner.scale_lr(ow, cfg.auto_scale_lr, world_size=4) == 0.5
    assert ow.param_groups[0]['lr'] == pytest.approx(1.2e-3)


def test_mmengine_rule_would_halve_it(repo_root, tmp_path):
    """The trap the runner removes: mmengine's scale_lr counts world x per-GPU batch only."""
    cfg = Config.fromfile(osp.join(repo_root, RCMAE_B))
    runner = build_recipe_runner(cfg, device='meta', work_dir=str(tmp_path))
    ow = _optim_wrapper(runner, cfg)
    runner._world_size = 8
    Runner.scale_lr(runner, ow, cfg.auto_scale_lr)
    assert ow.param_groups[0]['lr'] == pytest.approx(1.2e-3)


def test_build_runner_defaults_to_recipe_runner_and_keeps_other_runner_types(
        repo_root, tmp_path):
    cfg = Config.fromfile(osp.join(
        repo_root, 'configs/benchmarks/classification/vit-base-p16_8xb128-coslr-100e_in1k.py'))
    assert 'runner_type' not in cfg  # a transfer config: tools/train.py still counts accum
    assert type(build_recipe_runner(cfg, 'meta', str(tmp_path / 'a'))) is RecipeRunner
    cfg.runner_type = 'Runner'
    assert type(build_recipe_runner(cfg, 'cpu', str(tmp_path / 'b'))) is Runner


class _RecordLr(Hook):
    priority = 'LOWEST'

    def __init__(self):
        self.initial = None
        self.lrs = []

    def before_train(self, runner):
        self.initial = runner.optim_wrapper.param_groups[0]['lr']

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append(runner.optim_wrapper.param_groups[0]['lr'])


@pytest.mark.parametrize('accum,base,expected', [(2, 16, 1.5e-3), (1, 16, 0.75e-3)])
def test_training_scales_by_the_effective_batch(repo_root, demo_data, tmp_path, accum, base,
                                                expected):
    """Runner.train() itself (not only print_recipe) scales by GPUs x batch x accumulation."""
    cfg = Config.fromfile(osp.join(repo_root, DEMO))
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.dataset.data_root = osp.join(demo_data, 'cls')
    cfg.train_dataloader.dataset.indices = 16
    cfg.train_dataloader.batch_size = 8
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg.max_epochs = 1
    cfg.param_scheduler = []
    cfg.optim_wrapper.accumulative_counts = accum
    cfg.auto_scale_lr = dict(base_batch_size=base, enable=True)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.log_level = 'WARNING'
    runner = build_runner(cfg)
    record = _RecordLr()
    runner.register_hook(record)
    runner.train()
    assert record.initial == pytest.approx(expected)
    assert record.lrs == [pytest.approx(expected)] * 2
