"""One training run per work_dir (sdae_mm.utils.run_lock and tools/train.py)."""
import json
import os
import socket
import subprocess
import sys

import pytest

from sdae_mm.utils.run_lock import LOCK_NAME, WorkDirLock, hold_work_dir


def _write_lock(work_dir, **info):
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / LOCK_NAME).write_text(json.dumps(info))


def test_second_run_refuses_naming_the_first_and_lock_is_removed_on_exit(tmp_path):
    work = tmp_path / 'work'
    with hold_work_dir(str(work)) as lock:
        held = json.loads((work / LOCK_NAME).read_text())
        assert held['pid'] == os.getpid() and held['host'] == socket.gethostname()
        with pytest.raises(RuntimeError, match=f'PID {os.getpid()} on host'):
            WorkDirLock(str(work)).acquire()
        assert lock.held
    assert not (work / LOCK_NAME).exists()
    # removed when the run fails too
    with pytest.raises(ZeroDivisionError):
        with hold_work_dir(str(work)):
            1 / 0
    assert not (work / LOCK_NAME).exists()


def test_stale_lock_is_recognised(tmp_path):
    work = tmp_path / 'work'
    gone = subprocess.Popen([sys.executable, '-c', 'pass'])
    gone.wait()
    _write_lock(work, host=socket.gethostname(), pid=gone.pid, start='1', command='old run')
    with hold_work_dir(str(work)):
        assert json.loads((work / LOCK_NAME).read_text())['pid'] == os.getpid()
    # our PID, but recorded with another process start time: the PID was reused
    _write_lock(work, host=socket.gethostname(), pid=os.getpid(), start='-1', command='x')
    WorkDirLock(str(work)).acquire().release()
    assert not (work / LOCK_NAME).exists()


def test_lock_of_another_host_is_not_broken(tmp_path, monkeypatch):
    work = tmp_path / 'work'
    _write_lock(work, host='other-node', pid=1, started='2026-11-30 01:00:00',
                command='tools/train.py cfg.py')
    with pytest.raises(RuntimeError, match=f'other-node.*delete {work / LOCK_NAME}'):
        WorkDirLock(str(work)).acquire()
    assert (work / LOCK_NAME).exists()
    # only global rank 0 takes the lock
    monkeypatch.setenv('RANK', '1')
    with hold_work_dir(str(work)) as lock:
        assert lock is None


def test_train_py_refuses_a_work_dir_in_use(repo_root, tmp_path):
    """Before the config dump, the demo data or a checkpoint is written."""
    from tools import train
    work = tmp_path / 'work'
    _write_lock(work, host=socket.gethostname(), pid=os.getpid(),
                start=WorkDirLock(str(work)).info['start'], command='the first run')
    argv = [os.path.join(repo_root, 'configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py'),
            '--work-dir', str(work), '--cfg-options',
            f'train_dataloader.dataset.data_root={tmp_path}/no_data/cls']
    with pytest.raises(RuntimeError, match='the first run'):
        train.main(argv)
    assert sorted(os.listdir(work)) == [LOCK_NAME]
    assert not (tmp_path / 'no_data').exists()
