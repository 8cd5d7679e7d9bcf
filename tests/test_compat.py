"""sdae_mm.compat: mmengine checkpoints load with torch's safe loader, nothing else does."""
import io
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub


def _roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_message_hub_state_loads_with_weights_only():
    hub = MessageHub.get_instance('compat_test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('iter', np.int64(3))
    state = _roundtrip({'message_hub': hub.state_dict(), 'meta': {'seed': np.float64(1.0)}})
    buf = state['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer) and buf.current() == 0.5


def test_fresh_process_loads_history_buffer(tmp_path):
    """The statistics are resolvable before any HistoryBuffer exists in the process."""
    path = tmp_path / 'hub.pth'
    torch.save({'h': HistoryBuffer([1.0, 2.0], [1, 1])}, path)
    code = ('import torch, sdae_mm; '
            f'print(torch.load(r"{path}", weights_only=True)["h"].mean())')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().endswith('1.5')


class _Evil:

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


class _Exec:

    def __reduce__(self):
        return (eval, ('1 + 1', ))


@pytest.mark.parametrize('obj,match', [(_Evil(), 'only resolves HistoryBuffer statistics'),
                                       (_Exec(), 'eval')])
def test_other_objects_are_still_refused(obj, match):
    buf = io.BytesIO()
    torch.save({'x': obj}, buf, pickle_protocol=2)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match=match):
        torch.load(buf, weights_only=True)
