"""Reading (safe loader, clear errors) and writing (never a partial file) checkpoints."""
import argparse
import os

import numpy as np
import pytest
import torch

from sdae_mm.checkpoint import (CheckpointReadError, CheckpointWriteError, check_readable,
                                read_checkpoint, save_checkpoint)


@pytest.fixture
def good(tmp_path):
    path = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.arange(4096.)}, 'meta': {'epoch': 3}}, path)
    return path


def _bad_files(tmp_path, good):
    data = good.read_bytes()
    files = {
        'empty.pth': (b'', r'is empty \(0 bytes\)'),
        'truncated.pth': (data[:len(data) // 2], 'damaged or truncated torch zip archive'),
        'random.pth': (bytes(np.random.default_rng(0).integers(1, 127, 600, np.uint8) | 0x80),
                       'neither a torch zip archive nor a pickle|damaged or truncated pickle'),
        'text.pth': (b'version https://git-lfs.github.com/spec/v1\noid sha256:abc\n',
                     "a text file \\(starting 'version https://git-lfs"),
    }
    for name, (content, _) in files.items():
        (tmp_path / name).write_bytes(content)
    return {name: match for name, (_, match) in files.items()}


def test_reads_runner_and_official_checkpoints(tmp_path, good):
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('test_io_reader')
    hub.update_scalar('train/loss', 1.5)
    path = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'a': torch.ones(1)}, 'message_hub': hub.state_dict(),
                'meta': {'seed': np.int64(0)}}, path)
    assert read_checkpoint(path)['meta']['seed'] == 0
    # official MAE-family checkpoints carry their argparse.Namespace
    torch.save({'model': {'a': torch.ones(1)}, 'args': argparse.Namespace(lr=1e-3)}, path)
    assert read_checkpoint(str(path))['args'].lr == 1e-3
    check_readable(good)


@pytest.mark.parametrize('name', ['empty.pth', 'truncated.pth', 'random.pth', 'text.pth'])
@pytest.mark.parametrize('reader', [read_checkpoint, check_readable])
def test_unreadable_files_name_the_file_and_what_it_is_not(tmp_path, good, name, reader):
    matches = _bad_files(tmp_path, good)
    with pytest.raises(CheckpointReadError, match=matches[name]) as err:
        reader(str(tmp_path / name))
    message = str(err.value)
    assert str(tmp_path / name) in message
    assert 'weights_only' not in message and 'EOFError' not in message


class _Opaque:
    pass


def test_foreign_objects_are_refused_without_unsafe_advice(tmp_path):
    torch.save({'state_dict': {}, 'meta': {'thing': _Opaque()}}, tmp_path / 'x.pth')
    with pytest.raises(CheckpointReadError, match=r'holds .*_Opaque.*safe loader') as err:
        read_checkpoint(tmp_path / 'x.pth')
    assert 'weights_only' not in str(err.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        read_checkpoint(tmp_path / 'nope.pth')
    with pytest.raises(CheckpointReadError, match='is a folder'):
        read_checkpoint(tmp_path)


def test_safe_write_refuses_the_source_and_existing_files(tmp_path, good):
    before = good.read_bytes()
    with pytest.raises(CheckpointWriteError, match='it is the source checkpoint'):
        save_checkpoint({'x': 1}, str(good), sources=[str(good)], force=True)
    link = tmp_path / 'link.pth'
    os.symlink(good, link)
    with pytest.raises(CheckpointWriteError, match='it is the source checkpoint'):
        save_checkpoint({'x': 1}, str(link), sources=[str(good)], force=True)
    other = tmp_path / 'other.pth'
    other.write_bytes(b'keep me')
    with pytest.raises(CheckpointWriteError, match='use --force'):
        save_checkpoint({'x': 1}, str(other))
    assert good.read_bytes() == before and other.read_bytes() == b'keep me'
    save_checkpoint({'x': 2}, str(other), force=True)
    assert read_checkpoint(other) == {'x': 2}
    new = tmp_path / 'sub' / 'dir' / 'new.pth'
    save_checkpoint({'x': 3}, str(new))
    assert read_checkpoint(new) == {'x': 3}
    assert sorted(p.name for p in new.parent.iterdir()) == ['new.pth']


@pytest.mark.parametrize('existing', [False, True])
def test_failed_write_leaves_no_partial_destination(tmp_path, monkeypatch, existing):
    dst = tmp_path / 'out.pth'
    if existing:
        torch.save({'old': torch.ones(2)}, dst)
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)  # some bytes reach the disk, then it is full
        f.truncate(100)
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', full_disk)
    with pytest.raises(CheckpointWriteError, match=r"could not write '.*out\.pth': No space "
                       'left on device'):
        save_checkpoint({'w': torch.zeros(1000)}, str(dst), force=True)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == (['out.pth'] if existing else [])
    if existing:
        assert torch.equal(read_checkpoint(dst)['old'], torch.ones(2))


def test_written_file_has_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = save_checkpoint({'x': 1}, str(tmp_path / 'o.pth'))
    finally:
        os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o644
