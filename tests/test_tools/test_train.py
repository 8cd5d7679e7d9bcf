"""tools/train.py and tools/dist_train.sh on the demo data."""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

DEMO_CFG = 'configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py'


def _scalars(work_dir):
    logs = []
    for root, _, files in os.walk(work_dir):
        for f in files:
            if f == 'scalars.json':
                with open(osp.join(root, f)) as fh:
                    logs += [json.loads(line) for line in fh if line.strip()]
    return logs


def _env(repo_root):
    env = dict(os.environ, PYTHONPATH=repo_root + os.pathsep + os.environ.get('PYTHONPATH', ''),
               OMP_NUM_THREADS='1')
    return env


def test_demo_config_trains_through_train_py(repo_root, demo_data, tmp_path):
    """A short demo run: finite losses that go down."""
    work = tmp_path / 'work'
    cmd = [sys.executable, 'tools/train.py', DEMO_CFG, '--work-dir', str(work), '--cfg-options',
           f'train_dataloader.dataset.data_root={demo_data}/cls',
           'train_dataloader.dataset.indices=256', 'train_dataloader.batch_size=32',
           'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
           'train_cfg.max_epochs=5', 'default_hooks.logger.interval=1',
           'param_scheduler.0.end=1', 'param_scheduler.1.begin=1', 'param_scheduler.1.T_max=4',
           'param_scheduler.1.end=5']
    subprocess.run(cmd, cwd=repo_root, env=_env(repo_root), check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    losses = [r['loss'] for r in _scalars(work) if 'loss' in r]
    assert len(losses) == 5 * 8
    assert all(math.isfinite(v) for v in losses)
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < first - 0.05, (first, last)
    assert (work / 'epoch_5.pth').exists()


def test_two_process_gloo_ddp_keeps_teacher_identical(repo_root, demo_data, tmp_path):
    """tools/dist_train.sh CONFIG 2 on a CPU: two gloo processes, one teacher."""
    work = tmp_path / 'ddp'
    work.mkdir()
    env = _env(repo_root)
    env['PYTHONPATH'] = repo_root + os.pathsep + env['PYTHONPATH']
    env['PORT'] = '29517'
    env['PYTHON'] = sys.executable
    cfg = tmp_path / 'ddp_cfg.py'
    cfg.write_text(
        f"_base_ = ['{osp.join(repo_root, DEMO_CFG)}']\n"
        "custom_imports = dict(imports=['sdae_mm', 'tests.helpers.hooks'])\n"
        "custom_hooks = [\n"
        "    dict(type='TeacherEMAHook', momentum=0.9, end_momentum=0.99,\n"
        "         update_interval='iter', schedule_unit='iter'),\n"
        f"    dict(type='DumpTeacherHook', out_dir='{work}')]\n")
    cmd = ['bash', 'tools/dist_train.sh', str(cfg), '2', '--work-dir', str(work),
           '--cfg-options', f'train_dataloader.dataset.data_root={demo_data}/cls',
           'train_dataloader.dataset.indices=32', 'train_dataloader.batch_size=8',
           'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
           'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1']
    subprocess.run(cmd, cwd=repo_root, env=env, check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    t0 = torch.load(work / 'teacher_rank0.pth')
    t1 = torch.load(work / 'teacher_rank1.pth')
    ckpt = torch.load(work / 'epoch_1.pth', map_location='cpu', weights_only=True)
    assert ckpt['meta']['teacher_ema']['num_updates'] == 2  # 32 images / (2 x 8)
    for k in t0:
        torch.testing.assert_close(t0[k], t1[k], rtol=0, atol=0, msg=k)
        torch.testing.assert_close(t0[k], ckpt['state_dict']['teacher.' + k], rtol=0, atol=0)


def test_pretrained_backbone_that_does_not_fit_stops_before_training(demo_data, tmp_path):
    """mmengine's Pretrained init only warns about a misfit; tools/train.py checks first."""
    from mmpretrain.models import VisionTransformer

    from sdae_mm.checkpoint import CheckpointMismatchError
    from tools import train
    narrow = VisionTransformer(arch=dict(embed_dims=64, num_layers=6, num_heads=2,
                                         feedforward_channels=256), img_size=64, patch_size=8)
    path = tmp_path / 'narrow.pth'
    torch.save({'state_dict': narrow.state_dict(), 'meta': {}}, path)
    config = 'configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py'
    with pytest.raises(CheckpointMismatchError, match=r'narrow\.pth.*\n.*shape mismatches'):
        train.main([config, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                    f'model.backbone.init_cfg.checkpoint={path}',
                    f'train_dataloader.dataset.data_root={demo_data}/cls'])
    assert not (tmp_path / 'work' / 'epoch_1.pth').exists()
