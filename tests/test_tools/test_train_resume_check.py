"""tools/train.py --resume with an unreadable checkpoint names it and the previous good one."""
import os.path as osp

import pytest
import torch

from sdae_mm.checkpoint import CheckpointReadError
from tests.helpers.tools import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CFG = osp.join(ROOT, 'configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py')


def _train_tool():
    return load_tool('tools/train.py')


@pytest.mark.parametrize('explicit', [True, False])
def test_corrupt_resume_checkpoint_is_named_with_the_previous_good_one(tmp_path, explicit):
    work = tmp_path / 'work'
    work.mkdir()
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': {'epoch': 1}}, work / 'epoch_1.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': {'epoch': 2}}, work / 'epoch_2.pth')
    data = (work / 'epoch_2.pth').read_bytes()
    (work / 'epoch_2.pth').write_bytes(data[:len(data) // 3])  # killed while writing
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    resume = ['--resume', str(work / 'epoch_2.pth')] if explicit else ['--resume']
    with pytest.raises(CheckpointReadError) as err:
        _train_tool().main([DEMO_CFG, '--work-dir', str(work)] + resume)
    message = str(err.value)
    assert 'epoch_2.pth' in message and 'truncated' in message
    assert str(work / 'epoch_1.pth') in message and 'weights_only' not in message
