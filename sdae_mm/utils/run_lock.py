"""One training run per work_dir: a lock file naming the run that holds it."""
import json
import os
import os.path as osp
import signal
import socket
import sys
import time
from contextlib import contextmanager
from typing import Optional

LOCK_NAME = '.sdae_mm_run.lock'


def _process_start(pid: int) -> Optional[str]:
    """Start time of process ``pid`` (clock ticks since boot, from /proc), None when it
    does not exist or the platform has no /proc."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            # the command name (field 2) may hold spaces: split after its ')'
            return f.read().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start: Optional[str]) -> bool:
    """Whether ``pid`` runs on this host and is still the process that took the lock."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    now = _process_start(pid)
    return start is None or now is None or now == start


class WorkDirLock:
    """Holds ``<work_dir>/.sdae_mm_run.lock`` for the length of a training run.

    The file is created atomically and holds the holder's host, PID, process start time,
    start date and command line. A second run into the same ``work_dir`` refuses to start
    and names the first. A lock left by a run that died (same host, its process gone, or
    its PID now another process) is recognised as stale and replaced; a lock taken on
    another host cannot be checked from here, so the error says which file to delete once
    that run is known to be over.

    Args:
        work_dir (str): The run's work directory (created if missing).
    """

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self.info = dict(host=socket.gethostname(), pid=os.getpid(),
                         start=_process_start(os.getpid()),
                         started=time.strftime('%Y-%m-%d %H:%M:%S'),
                         command=' '.join(sys.argv))
        self.held = False

    def holder(self) -> Optional[dict]:
        """The lock's content, or None when there is no lock (an unreadable lock: {})."""
        try:
            with open(self.path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def is_stale(self, holder: dict) -> bool:
        """Whether the lock's holder is known to be gone."""
        if not holder:  # empty or torn file: stale once older than a write could take
            try:
                return time.time() - os.stat(self.path).st_mtime > 60
            except FileNotFoundError:
                return True
        if holder.get('host') != socket.gethostname():
            return False
        return not _alive(int(holder.get('pid', -1)), holder.get('start'))

    def acquire(self) -> 'WorkDirLock':
        """Take the lock, replacing a stale one.

        Raises:
            RuntimeError: Another live run holds the lock (its host, PID, start and
                command are named).
        """
        os.makedirs(self.work_dir, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder is None:
                    continue  # released meanwhile
                if not self.is_stale(holder):
                    raise RuntimeError(self._held_message(holder))
                os.remove(self.path)
                continue
            with os.fdopen(fd, 'w') as f:
                json.dump(self.info, f)
            self.held = True
            return self
        raise RuntimeError(f'could not take the run lock {self.path}: it keeps changing '
                           '(another run is starting in the same work_dir)')

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self.held and (self.holder() or {}).get('pid') == self.info['pid']:
            os.remove(self.path)
        self.held = False

    def _held_message(self, holder: dict) -> str:
        if not holder:
            who = 'a run that is starting or left an unreadable lock'
        else:
            who = (f"the run of PID {holder.get('pid')} on host {holder.get('host')}, "
                   f"started {holder.get('started')}: {holder.get('command')}")
        return (f'work_dir {osp.abspath(self.work_dir)!r} is in use by {who}. Two runs in one '
                'work_dir overwrite each other\'s checkpoints and logs: choose another '
                f'--work-dir, or delete {self.path} if that run is over.')


def _is_main_process() -> bool:
    """Global rank 0 of a launch (torchrun's RANK, Slurm's SLURM_PROCID), or no launch."""
    for key in ('RANK', 'SLURM_PROCID'):
        if key in os.environ:
            return int(os.environ[key]) == 0
    return True


@contextmanager
def hold_work_dir(work_dir: str):
    """Hold :class:`WorkDirLock` on ``work_dir`` while the block runs (global rank 0
    only). SIGTERM (Slurm's cancel, a preemption) ends the block like an exception, so
    the lock is removed then too."""
    if not _is_main_process():
        yield None
        return
    lock = WorkDirLock(work_dir).acquire()

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: signals stay as they are
        previous = None
    try:
        yield lock
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        lock.release()


__all__ = ['WorkDirLock', 'hold_work_dir', 'LOCK_NAME']
