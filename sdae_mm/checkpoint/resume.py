"""Check the checkpoint a run resumes from before the Runner reads it."""
import glob
import os.path as osp
import re
from typing import List, Optional

from .io import CheckpointReadError, check_readable

__all__ = ['checkpoints_in', 'resume_checkpoint_of', 'check_resume_checkpoint']


def checkpoints_in(work_dir: str) -> List[str]:
    """``epoch_N.pth`` / ``iter_N.pth`` files of a work dir, oldest first."""
    found = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        m = re.fullmatch(r'(epoch|iter)_(\d+)\.pth', osp.basename(path))
        if m:
            found.append((int(m.group(2)), path))
    return [p for _, p in sorted(found)]


def resume_checkpoint_of(cfg) -> Optional[str]:
    """The file a config resumes from: ``load_from``, else the work dir's latest."""
    if not cfg.get('resume', False):
        return None
    if cfg.get('load_from'):
        return cfg.load_from
    from mmengine.runner.checkpoint import find_latest_checkpoint
    work_dir = cfg.get('work_dir')
    return find_latest_checkpoint(work_dir) if work_dir and osp.isdir(work_dir) else None


def check_resume_checkpoint(cfg) -> Optional[str]:
    """Raise if the checkpoint a run would resume from cannot be read.

    The error names the unreadable file, what is wrong with it, and the newest
    readable checkpoint before it in the same folder (if any) to resume from instead.

    Args:
        cfg (Config): The run's config (``resume``, ``load_from``, ``work_dir``).

    Returns:
        str | None: The checkpoint that will be resumed from (None: a fresh start).
    """
    path = resume_checkpoint_of(cfg)
    if path is None:
        return None
    try:
        check_readable(path)
    except (CheckpointReadError, FileNotFoundError) as err:
        found = checkpoints_in(osp.dirname(osp.abspath(path)))
        names = [osp.basename(p) for p in found]
        older = found[:names.index(osp.basename(path))] if osp.basename(path) in names \
            else found
        previous = None
        for candidate in reversed(older):
            try:
                check_readable(candidate)
            except (CheckpointReadError, FileNotFoundError):
                continue
            previous = candidate
            break
        advice = (f'the previous readable checkpoint is {previous!r}: resume from it with '
                  f'--resume {previous}' if previous else
                  'no earlier readable checkpoint was found in its folder')
        raise CheckpointReadError(f'cannot resume: {err}; {advice}') from None
    return path
