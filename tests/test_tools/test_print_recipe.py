"""tools/analysis_tools/print_recipe.py: the effective recipe of any config."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

RCMAE_B = 'configs/rc_mae/rc_mae_vit-base-p16_8xb256-accum2-amp-coslr-1600e_in1k.py'


def _run(repo_root, *args):
    sys.path.insert(0, osp.join(repo_root, 'tools', 'analysis_tools'))
    try:
        import print_recipe
    finally:
        sys.path.pop(0)
    return print_recipe.main(list(args))


def test_rc_mae_on_its_declared_gpus(repo_root, tmp_path, capsys):
    out_json = tmp_path / 'recipe.json'
    recipe = _run(repo_root, osp.join(repo_root, RCMAE_B), '--json', str(out_json))
    text = capsys.readouterr().out
    assert 'GPUs: 8 (1 node(s); config name (8xb256-accum2))' in text
    assert 'total batch: 8 GPUs x 256 per GPU x 2 accumulation = 4096' in text
    assert '-> base lr 0.0024 (= blr 0.00015 x 4096 / 256)' in text
    assert 'warm-up: 25,000 iterations = 40 epochs' in text
    assert 'schedule_unit=epoch_step' in text and 'within every epoch: 0.9960000000' in text
    assert 'AMP: AmpOptimWrapper, float16, loss scale dynamic' in text
    assert 'grad clipping: none' in text
    assert 'neck.decoder_blocks (8): 0 0 0 0 0 0 0 0' in text
    saved = json.loads(out_json.read_text())
    assert saved['lr']['base_lr'] == pytest.approx(2.4e-3)
    assert saved['schedule']['optimizer_steps'] == recipe['schedule']['optimizer_steps'] == 500_000
    assert saved['launch']['total_batch'] == 4096


def test_other_gpu_counts_and_nodes(repo_root, capsys):
    r = _run(repo_root, osp.join(repo_root, RCMAE_B), '--gpus', '4')
    assert r['lr']['base_lr'] == pytest.approx(1.2e-3)
    assert r['schedule']['iters_per_epoch'] == 1251
    assert 'DIFFERENT' in capsys.readouterr().out
    r = _run(repo_root, osp.join(repo_root, RCMAE_B), '--nodes', '2')
    assert (r['launch']['gpus'], r['launch']['nodes']) == (16, 2)
    assert r['lr']['base_lr'] == pytest.approx(4.8e-3)


def test_detection_config_of_two_nodes(repo_root, capsys):
    """mmdet scope: 16xb2 -> 16 GPUs on 2 nodes, 12 epochs of COCO train2017."""
    r = _run(repo_root, osp.join(
        repo_root, 'configs/benchmarks/detection/mask-rcnn_vit-b-p16_fpn_16xb2-ms-1x_coco.py'))
    assert r['scope'] == 'mmdet' and r['device'] == 'meta'
    assert (r['launch']['gpus'], r['launch']['nodes'], r['launch']['total_batch']) == (16, 2, 32)
    assert r['dataset']['size'] == 117_266
    assert r['schedule']['iters_per_epoch'] == 3665 and r['schedule']['max_epochs'] == 12
    assert len(r['lr']['per_layer']) == 14  # embed, 12 blocks, the rest: layer decay
    assert r['lr']['group_max'] > r['lr']['group_min']
    assert len(r['drop_path']['backbone.layers']) == 12
    assert 'lr per layer:' in capsys.readouterr().out


def test_demo_config_needs_and_takes_a_dataset_size(repo_root, capsys):
    cfg = osp.join(repo_root, 'configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py')
    with pytest.raises(ValueError, match='--dataset-size'):
        _run(repo_root, cfg)
    r = _run(repo_root, cfg, '--dataset-size', '1438')
    assert r['schedule']['iters_per_epoch'] == 22 and r['schedule']['max_iters'] == 60 * 22
    assert r['teacher_momentum']['updates'] == 60 * 22


def test_command_line(repo_root):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/print_recipe.py',
         'configs/dbot/dbot_vit-large-p16_32xb128-amp-coslr-1600e_in1k.py'],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'GPUs: 32 (4 node(s); config name (32xb128))' in proc.stdout
    assert 'dBOT stages: switch after epochs [800]' in proc.stdout
    assert 'teacher depth 0' in proc.stdout and 'teacher depth 24' in proc.stdout


def test_bad_counts_are_rejected(repo_root, capsys):
    with pytest.raises(SystemExit) as err:
        _run(repo_root, RCMAE_B, '--gpus', '0')
    assert err.value.code == 2 and '--gpus must be at least 1' in capsys.readouterr().err


def test_cfg_options_are_checked_as_in_train(repo_root, capsys):
    """A misspelt key is an error here too, not a recipe printed with the default."""
    with pytest.raises(ValueError, match='optim_wraper.*optim_wrapper'):
        _run(repo_root, RCMAE_B, '--cfg-options', 'optim_wraper.optimizer.lr=1e-3')
    _run(repo_root, RCMAE_B, '--cfg-options', 'optim_wrapper.optimizer.lr=1.2e-3')
    assert 'lr over groups: min 0.0012, max 0.0012' in capsys.readouterr().out
