"""tools/test.py loads the checkpoint strictly: a file that does not fit is an error."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from sdae_mm.checkpoint import CheckpointMismatchError, CheckpointReadError
from tests.helpers.tools import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LINEAR_DEMO = osp.join(ROOT, 'configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py')


def _tool():
    return load_tool('tools/test.py')


def _args(demo_data, tmp_path, checkpoint):
    return [LINEAR_DEMO, str(checkpoint), '--work-dir', str(tmp_path / 'work'),
            '--cfg-options', f'test_dataloader.dataset.data_root={demo_data}/cls',
            'test_dataloader.dataset.indices=16', 'test_dataloader.batch_size=16',
            'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
            'model.backbone.init_cfg=None']


def _classifier():
    cfg = Config.fromfile(LINEAR_DEMO)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def test_checkpoint_that_does_not_fit_is_an_error_naming_keys(demo_data, tmp_path):
    tool = _tool()
    model = _classifier()
    # a pretraining checkpoint (encoders, no classifier head) for a classifier
    backbone = {k: v for k, v in model.state_dict().items() if k.startswith('backbone.')}
    teacher = {'teacher.' + k[len('backbone.'):]: v for k, v in backbone.items()}
    path = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': dict(backbone, **teacher), 'meta': {}}, path)
    with pytest.raises(CheckpointMismatchError) as err:
        tool.main(_args(demo_data, tmp_path, path))
    message = str(err.value)
    assert 'missing keys' in message and 'head.fc.weight' in message
    assert 'unexpected keys' in message and 'teacher.' in message
    # another architecture: mis-shaped keys are named
    state = model.state_dict()
    state['head.fc.weight'] = torch.zeros(5, state['head.fc.weight'].shape[1])
    torch.save({'state_dict': state}, path)
    with pytest.raises(CheckpointMismatchError, match=r'head\.fc\.weight: checkpoint \(5, '):
        tool.main(_args(demo_data, tmp_path, path))
    # an unreadable file is named
    path.write_text('not a checkpoint')
    with pytest.raises(CheckpointReadError, match=r"epoch_1\.pth' is a text file"):
        tool.main(_args(demo_data, tmp_path, path))


def test_fitting_checkpoint_is_evaluated(demo_data, tmp_path):
    model = _classifier()
    path = tmp_path / 'classifier.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    metrics = _tool().main(_args(demo_data, tmp_path, path))
    assert 0 <= metrics['accuracy/top1'] <= 100
