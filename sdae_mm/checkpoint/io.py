"""Reading and writing checkpoint files: the only place that calls ``torch.load``.

Reading uses torch's safe loader (``weights_only=True``) with the objects of mmengine
checkpoints (:mod:`sdae_mm.compat`) and ``argparse.Namespace`` (the ``args`` entry of the
official MAE-family checkpoints) allowed. A file that cannot be read is an error naming
the file and what it is not; writing goes to a temporary file beside the destination that
is renamed, so a failure never leaves a partial destination.
"""
import argparse
import contextlib
import os
import os.path as osp
import pickle
import re
import tempfile
from typing import Any, Iterable, Optional

import torch

__all__ = ['CheckpointReadError', 'CheckpointWriteError', 'read_checkpoint',
           'check_readable', 'save_checkpoint']

#: globals that official checkpoints carry besides tensors and plain containers
_EXTRA_SAFE_GLOBALS = [argparse.Namespace]
_ZIP_MAGIC = b'PK\x03\x04'


class CheckpointReadError(ValueError):
    """A checkpoint file cannot be read; the message names the file and why."""


class CheckpointWriteError(OSError):
    """A checkpoint cannot be written where asked; nothing was written there."""


def _safe_globals():
    ctx = getattr(torch.serialization, 'safe_globals', None)
    return ctx(_EXTRA_SAFE_GLOBALS) if ctx is not None else contextlib.nullcontext()


def _describe(path: str, head: bytes, size: int) -> str:
    """What a file that torch could not read looks like."""
    if head.startswith(_ZIP_MAGIC):
        return (f'a damaged or truncated torch zip archive ({size} bytes): not a complete '
                'checkpoint')
    if head[:1] == b'\x80':
        return (f'a damaged or truncated pickle ({size} bytes): not a complete checkpoint')
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in '\r\n\t' for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ''
        return f'a text file (starting {first!r}), not a torch checkpoint'
    return (f'neither a torch zip archive nor a pickle (first bytes {head[:8].hex()}): not '
            'a torch checkpoint')


def _header(path: str) -> bytes:
    with open(path, 'rb') as f:
        return f.read(256)


def _check_path(path: str) -> int:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f'checkpoint path must be a str, got {type(path).__name__}')
    path = os.fspath(path)
    if not osp.exists(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    if osp.isdir(path):
        raise CheckpointReadError(f'checkpoint {path!r} is a folder, not a file')
    size = osp.getsize(path)
    if size == 0:
        raise CheckpointReadError(f'checkpoint {path!r} is empty (0 bytes): not a checkpoint')
    return size


def _load(path: str, mmap: bool) -> Any:
    size = _check_path(path)
    head = _header(path)
    kwargs = dict(map_location='cpu', weights_only=True)
    if mmap and head.startswith(_ZIP_MAGIC):
        kwargs['mmap'] = True
    try:
        with _safe_globals():
            return torch.load(path, **kwargs)
    except pickle.UnpicklingError as err:
        found = re.search(r'(?:Unsupported global|unsupported global):?\s*GLOBAL\s+([\w.]+)',
                          str(err))
        if found or 'weights_only' in str(err) and 'GLOBAL' in str(err):
            what = found.group(1) if found else 'an object'
            raise CheckpointReadError(
                f'checkpoint {path!r} holds {what}, which is not a tensor, number or '
                'container: the safe loader refuses it, so it is not a checkpoint this '
                'suite reads') from None
        raise CheckpointReadError(f'checkpoint {path!r} is {_describe(path, head, size)}') \
            from None
    except Exception:  # noqa: B902  (EOFError, struct.error, zip errors: unreadable)
        raise CheckpointReadError(f'checkpoint {path!r} is {_describe(path, head, size)}') \
            from None


def read_checkpoint(path: str) -> Any:
    """Load a checkpoint file on the CPU with torch's safe loader.

    Args:
        path (str): The file.

    Returns:
        The loaded object (usually a dict).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointReadError: the file is empty, truncated, damaged, text or another
            kind of file, or holds objects the safe loader refuses.
    """
    return _load(os.fspath(path), mmap=False)


def check_readable(path: str) -> None:
    """Raise :class:`CheckpointReadError` unless ``path`` opens as a checkpoint.

    Zip-format checkpoints are memory-mapped, so only their index and pickled structure
    are read (fast even for large files); a truncated archive is detected.
    """
    _load(os.fspath(path), mmap=True)


def _same_file(a: str, b: str) -> bool:
    if osp.realpath(a) == osp.realpath(b):
        return True
    try:
        return osp.exists(a) and osp.exists(b) and osp.samefile(a, b)
    except OSError:
        return False


def save_checkpoint(obj: Any, dst: str, sources: Iterable[str] = (),
                    force: bool = False) -> str:
    """Write ``obj`` with ``torch.save`` to ``dst`` safely.

    ``dst`` must not be one of ``sources`` (refused even with ``force``), and must not
    exist unless ``force``. The data go to a temporary file in ``dst``'s folder that is
    renamed to ``dst`` only once complete, so an interrupted or failed write (full disk)
    leaves ``dst`` as it was (absent, or the previous file).

    Args:
        obj: What to save.
        dst (str): Destination file.
        sources (Iterable[str]): Files the data come from; never overwritten.
        force (bool): Replace an existing ``dst``. Defaults to False.

    Returns:
        str: ``dst``.

    Raises:
        CheckpointWriteError: ``dst`` is a source, exists without ``force``, is a folder,
            or the write failed (the message names ``dst`` and the cause).
    """
    dst = os.fspath(dst)
    for src in sources:
        if _same_file(os.fspath(src), dst):
            raise CheckpointWriteError(
                f'refusing to write {dst!r}: it is the source checkpoint {os.fspath(src)!r}; '
                'choose another output file')
    if osp.isdir(dst):
        raise CheckpointWriteError(f'refusing to write {dst!r}: it is a folder')
    if osp.exists(dst) and not force:
        raise CheckpointWriteError(
            f'refusing to overwrite the existing file {dst!r} (use --force to replace it)')
    folder = osp.dirname(osp.abspath(dst))
    tmp: Optional[str] = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(dst)}.', suffix='.tmp',
                                   dir=folder)
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would create it (mkstemp uses 0600)
        os.replace(tmp, dst)
        tmp = None
    except OSError as err:
        raise CheckpointWriteError(
            f'could not write {dst!r}: {err.strerror or err}; {dst!r} was left as it was')\
            from err
    finally:
        if tmp is not None and osp.exists(tmp):
            os.remove(tmp)
    return dst
