"""Short training runs of the demo pretraining configs, in-process and through the tool."""
import copy
import os.path as osp
import subprocess
import sys

from mmengine.config import Config
from mmengine.runner import Runner

from .hooks import RecordLossHook


def small_demo_cfg(repo_root, config, demo_data, work_dir, max_epochs, images=16):
    """``config`` (a demo pretraining config) on the first ``images`` demo images, 8 per
    step, loaded in the main process, with a checkpoint every epoch and quiet logs."""
    cfg = Config.fromfile(osp.join(repo_root, config))
    cfg.work_dir = str(work_dir)
    loader = cfg.train_dataloader
    loader.dataset.data_root = osp.join(demo_data, 'cls')
    loader.dataset.indices = images
    loader.batch_size = 8
    loader.num_workers = 0
    loader.persistent_workers = False
    cfg.train_cfg.max_epochs = max_epochs
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1, save_last=True)
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    return cfg


def run_recording_losses(cfg, resume_from=None, hooks=()):
    """Train a copy of ``cfg`` (resumed from ``resume_from`` if given); returns the runner
    and ``(iter, loss)`` of every iteration."""
    recorder = RecordLossHook()
    cfg = copy.deepcopy(cfg)
    if resume_from:
        cfg.resume = True
        cfg.load_from = resume_from
    runner = Runner.from_cfg(cfg)
    runner.register_hook(recorder)
    for hook in hooks:
        runner.register_hook(hook)
    runner.train()
    return runner, recorder.losses


def train_tool(repo_root, config, demo_data, work_dir, *options, max_epochs=2):
    """``tools/train.py config`` on 16 demo images for ``max_epochs`` epochs (a checkpoint
    each) with extra ``--cfg-options``; returns the finished process."""
    cmd = [sys.executable, osp.join(repo_root, 'tools/train.py'), osp.join(repo_root, config),
           '--work-dir', str(work_dir), '--cfg-options',
           f'train_dataloader.dataset.data_root={osp.join(demo_data, "cls")}',
           'train_dataloader.dataset.indices=16', 'train_dataloader.batch_size=8',
           'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
           f'train_cfg.max_epochs={max_epochs}', 'default_hooks.logger.interval=1',
           'default_hooks.checkpoint.interval=1', *options]
    return subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=600)
