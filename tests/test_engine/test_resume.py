"""Resume under torch >= 2.6 (weights_only loading) gives the same next step."""

import pytest
import torch

from tests.helpers.runs import run_recording_losses as _run
from tests.helpers.runs import small_demo_cfg

DEMO_CFG = 'configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py'


def _cfg(repo_root, demo_data, work_dir, max_epochs):
    cfg = small_demo_cfg(repo_root, DEMO_CFG, demo_data, work_dir, max_epochs)
    cfg.param_scheduler[0].end = 1
    cfg.param_scheduler[1].begin = 1
    cfg.param_scheduler[1].T_max = 2
    cfg.param_scheduler[1].end = 3
    return cfg


def test_resume_gives_same_next_losses_and_teacher(repo_root, demo_data, tmp_path):
    # an uninterrupted 2-epoch run, which also leaves its epoch-1 checkpoint behind
    full, full_losses = _run(_cfg(repo_root, demo_data, tmp_path / 'full', 2))
    ckpt = tmp_path / 'full' / 'epoch_1.pth'
    assert ckpt.exists()
    # a full training checkpoint (message hub with HistoryBuffer, numpy state) loads with
    # torch's safe loader thanks to sdae_mm.compat
    loaded = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert {'state_dict', 'optimizer', 'message_hub', 'param_schedulers'} <= set(loaded)
    assert loaded['meta']['teacher_ema']['num_updates'] == 2

    resumed, resumed_losses = _run(_cfg(repo_root, demo_data, tmp_path / 'resumed', 2),
                                   resume_from=str(ckpt))
    assert [i for i, _ in resumed_losses] == [2, 3]  # 0-based, after the 2 of epoch 1
    expected = dict(full_losses)
    for it, loss in resumed_losses:
        assert loss == pytest.approx(expected[it], abs=1e-6), f'iteration {it}'
    full_sd, resumed_sd = full.model.state_dict(), resumed.model.state_dict()
    for k in full_sd:
        torch.testing.assert_close(resumed_sd[k], full_sd[k], rtol=0, atol=1e-6, msg=k)
    assert any(k.startswith('teacher.') for k in full_sd)
