"""tools/train.py's launch check: a batch other than the declared one is reported before
training, and --strict-recipe refuses to start."""
import os
import os.path as osp
import subprocess
import sys

DEMO_CFG = 'configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py'


def _cmd(repo_root, demo_data, work, *extra):
    return [sys.executable, 'tools/train.py', DEMO_CFG, '--work-dir', str(work), *extra,
            '--cfg-options', f'train_dataloader.dataset.data_root={demo_data}/cls',
            'train_dataloader.dataset.indices=16', 'train_dataloader.batch_size=8',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'train_cfg.max_epochs=1', 'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
            'param_scheduler.1.T_max=1', 'param_scheduler.1.end=2']


def test_strict_recipe_refuses_and_default_warns(repo_root, demo_data, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=repo_root + os.pathsep + os.environ.get('PYTHONPATH', ''))
    strict = subprocess.run(_cmd(repo_root, demo_data, tmp_path / 'strict', '--strict-recipe'),
                            cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)
    assert strict.returncode != 0
    assert 'RecipeError' in strict.stderr and 'Refusing to start' in strict.stderr
    assert '1 GPU(s) x 8 per GPU x 1 accumulation = 8' in strict.stderr
    assert 'declares 1 x 64 x 1 = 64' in strict.stderr
    assert not list((tmp_path / 'strict').glob('*.pth'))

    run = subprocess.run(_cmd(repo_root, demo_data, tmp_path / 'warn'), cwd=repo_root, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    log = run.stdout + run.stderr
    assert 'recipe check:' in log and 'NOT scaled (auto_scale_lr is off)' in log
    assert osp.isfile(tmp_path / 'warn' / 'epoch_1.pth')
