"""The classification demo configs train and evaluate through tools/train.py and tools/test.py."""
import json
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers.tools import load_tool

FINETUNE_DEMO = 'configs/demo/finetune_vit-demo-p8_1xb64-coslr-5e_digits.py'
LINEAR_DEMO = 'configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py'
DEMO_ARCH = dict(embed_dims=96, num_layers=6, num_heads=3, feedforward_channels=384)
# 32 training and 20 validation images spread over the ten classes
TRAIN_IDX = '[' + ','.join(str(i) for i in range(0, 1430, 45)) + ']'
VAL_IDX = '[' + ','.join(str(i) for i in range(0, 359, 18)) + ']'


def _tiny_options(data_root, checkpoint):
    opts = [f'model.backbone.init_cfg.checkpoint={checkpoint}']
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={data_root}',
                 f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    opts += [f'train_dataloader.dataset.indices={TRAIN_IDX}', 'train_dataloader.batch_size=16',
             f'val_dataloader.dataset.indices={VAL_IDX}', 'val_dataloader.batch_size=20',
             f'test_dataloader.dataset.indices={VAL_IDX}', 'test_dataloader.batch_size=20',
             'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
             'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1']
    return opts


@pytest.fixture(scope='module')
def converted_backbone(tmp_path_factory):
    """A converted demo backbone (what tools/convert_checkpoint.py --to mmpretrain writes)."""
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(0)
    vit = VisionTransformer(arch=DEMO_ARCH, img_size=64, patch_size=8)
    vit.init_weights()
    path = str(tmp_path_factory.mktemp('ckpt') / 'backbone_mmpretrain.pth')
    torch.save({'state_dict': vit.state_dict(), 'meta': {'target': 'mmpretrain'}}, path)
    return path, vit.state_dict()


def _load_tool(repo_root, name):
    return load_tool(f'tools/{name}.py')


def test_linear_demo_through_train_and_test_scripts(repo_root, demo_data, converted_backbone,
                                                    tmp_path):
    """Subprocesses, as a user runs them: train (with validation), then test."""
    ckpt, weights = converted_backbone
    work = tmp_path / 'linear'
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=repo_root + os.pathsep + os.environ.get('PYTHONPATH', ''))
    opts = _tiny_options(f'{demo_data}/cls', ckpt)
    subprocess.run([sys.executable, 'tools/train.py', LINEAR_DEMO, '--work-dir', str(work),
                    '--cfg-options'] + opts, cwd=repo_root, env=env, check=True, timeout=900,
                   stdout=subprocess.DEVNULL)
    trained = torch.load(work / 'epoch_1.pth', map_location='cpu', weights_only=False)
    sd = trained['state_dict']
    # the encoder is frozen: still the converted weights; the head has moved
    for name in ('pos_embed', 'layers.5.attn.qkv.weight', 'ln1.weight'):
        torch.testing.assert_close(sd['backbone.' + name], weights[name])
    assert sd['head.fc.weight'].abs().sum() > 0
    assert 'neck.bn.running_mean' in sd and 'neck.bn.weight' not in sd  # no affine
    scalars = [json.loads(line) for f in work.glob('*/vis_data/scalars.json')
               for line in f.read_text().splitlines() if line.strip()]
    assert any('accuracy/top1' in r for r in scalars)  # validated during training

    metrics_file = tmp_path / 'metrics.json'
    subprocess.run([sys.executable, 'tools/test.py', LINEAR_DEMO, str(work / 'epoch_1.pth'),
                    '--work-dir', str(tmp_path / 'test'), '--metrics-json', str(metrics_file),
                    '--cfg-options'] + opts, cwd=repo_root, env=env, check=True, timeout=900,
                   stdout=subprocess.DEVNULL)
    metrics = json.loads(metrics_file.read_text())
    assert 0. <= metrics['accuracy/top1'] <= metrics['accuracy/top5'] <= 100.
    # 20 images: every accuracy is a multiple of 5 %
    assert metrics['accuracy/top1'] % 5 == pytest.approx(0, abs=1e-4)


def test_finetune_demo_through_train_and_test_entry_points(repo_root, demo_data,
                                                           converted_backbone, tmp_path):
    """The same entry points, called in-process (each subprocess costs ~15 s of imports)."""
    ckpt, weights = converted_backbone
    cwd = os.getcwd()
    os.chdir(repo_root)
    try:
        train = _load_tool(repo_root, 'train')
        test = _load_tool(repo_root, 'test')
        opts = _tiny_options(f'{demo_data}/cls', ckpt)
        work = tmp_path / 'finetune'
        runner = train.main([FINETUNE_DEMO, '--work-dir', str(work), '--cfg-options'] + opts)
        assert runner.iter == 2
        val_top1 = runner.message_hub.get_scalar('val/accuracy/top1').current()
        assert 0. <= val_top1 <= 100.
        sd = torch.load(work / 'epoch_1.pth', map_location='cpu',
                        weights_only=False)['state_dict']
        # fine-tuned: the encoder has moved away from the pretrained weights
        assert not torch.equal(sd['backbone.layers.5.attn.qkv.weight'],
                               weights['layers.5.attn.qkv.weight'])
        assert 'backbone.ln2.weight' in sd and 'backbone.ln1.weight' not in sd
        metrics_file = tmp_path / 'ft_metrics.json'
        metrics = test.main([FINETUNE_DEMO, str(work / 'epoch_1.pth'), '--work-dir',
                             str(tmp_path / 'ft_test'), '--metrics-json', str(metrics_file),
                             '--cfg-options'] + opts)
    finally:
        os.chdir(cwd)
    saved = json.loads(metrics_file.read_text())
    assert saved['accuracy/top1'] == pytest.approx(metrics['accuracy/top1'])
    # the test set equals the validation set here: same weights, same accuracy
    assert saved['accuracy/top1'] == pytest.approx(val_top1)
