"""Warm-up plus half-cycle cosine learning rate, restarted at each training stage (dBOT)."""
import math
from typing import Sequence

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.registry import PARAM_SCHEDULERS


class StagewiseCosineParamScheduler(_ParamScheduler):
    """A linear warm-up from 0 then a half-cycle cosine down to ``eta_min``, within each
    stage ``[stage_epochs[k], stage_epochs[k + 1])``.

    The value is a closed-form function of the position ``t`` (in epochs, fractional
    when stepped per iteration) and the base value, exactly the official dBOT
    ``util/lr_sched.py``: with ``s = t - stage start`` and ``T`` the stage length,
    ``base * s / W`` while ``s < W`` (``W = warmup_epochs``), then
    ``eta_min + (base - eta_min) * (1 + cos(pi * (s - W) / (T - W))) / 2``. With
    ``per_stage=False`` the whole run ``[0, stage_epochs[-1])`` is one stage (the MAE
    schedule). Being closed-form, it does not depend on what other schedulers did and
    resumes exactly.

    Args:
        optimizer (Optimizer | OptimWrapper): Wrapped optimizer.
        param_name (str): Parameter to schedule.
        stage_epochs (Sequence[int]): Stage boundaries in epochs, starting with 0 (official
            ``--stage_epochs``, e.g. ``(0, 800, 1600)``).
        warmup_epochs (float): Warm-up length of each stage, in epochs. Defaults to 40.
        eta_min (float): Final value of each stage (official ``--min_lr``). Defaults to 0.
        per_stage (bool): Restart warm-up and cosine at each stage (official). Defaults to
            True.
        begin (int): First step of the scheduler. Defaults to 0.
        end (int): Step after which it stops. Defaults to INF.
        last_step (int): Index of the last step. Defaults to -1.
        by_epoch (bool): Stepped per epoch. Use ``convert_to_iter_based=True`` in configs
            to step per iteration as the official code does. Defaults to True.
        epoch_length (int, optional): Iterations per epoch when stepped per iteration
            (set by :meth:`build_iter_from_epoch`).
        verbose (bool): Print each update. Defaults to False.
    """

    def __init__(self,
                 optimizer,
                 param_name: str,
                 stage_epochs: Sequence[int],
                 warmup_epochs: float = 40,
                 eta_min: float = 0.,
                 per_stage: bool = True,
                 begin: int = 0,
                 end: int = INF,
                 last_step: int = -1,
                 by_epoch: bool = True,
                 epoch_length: int = None,
                 verbose: bool = False) -> None:
        stage_epochs = [int(e) for e in stage_epochs]
        if len(stage_epochs) < 2 or stage_epochs[0] != 0 or any(
                b <= a for a, b in zip(stage_epochs, stage_epochs[1:])):
            raise ValueError('stage_epochs must start with 0 and increase strictly, got '
                             f'{stage_epochs}')
        bounds = stage_epochs if per_stage else [0, stage_epochs[-1]]
        shortest = min(b - a for a, b in zip(bounds, bounds[1:]))
        if not 0 <= warmup_epochs < shortest:
            raise ValueError(f'warmup_epochs={warmup_epochs} must be in [0, {shortest}) (the '
                             'shortest stage)')
        if not by_epoch and not epoch_length:
            raise ValueError('a per-iteration StagewiseCosineLR needs epoch_length: use '
                             'by_epoch=True with convert_to_iter_based=True')
        self.stage_epochs = stage_epochs
        self.bounds = bounds
        self.warmup_epochs = warmup_epochs
        self.eta_min = eta_min
        self.per_stage = per_stage
        self.steps_per_epoch = 1 if by_epoch else int(epoch_length)
        super().__init__(optimizer, param_name=param_name, begin=begin, end=end,
                         last_step=last_step, by_epoch=by_epoch, verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, begin=0, end=INF, by_epoch=True, epoch_length=None,
                              **kwargs):
        """Build a per-iteration instance from an epoch-based config."""
        if not by_epoch:
            raise ValueError('only an epoch-based config (by_epoch=True) can be converted')
        if not epoch_length or epoch_length <= 0:
            raise ValueError(f'epoch_length must be a positive integer, got {epoch_length}')
        begin = int(begin * epoch_length)
        if end != INF:
            end = int(end * epoch_length)
        return cls(*args, begin=begin, end=end, by_epoch=False, epoch_length=epoch_length,
                   **kwargs)

    def factor_at(self, epoch: float, base: float) -> float:
        """Value at position ``epoch`` (in epochs) for a base value ``base``."""
        start, stop = self.bounds[-2], self.bounds[-1]
        for a, b in zip(self.bounds, self.bounds[1:]):
            if epoch < b:
                start, stop = a, b
                break
        s, W, T = epoch - start, self.warmup_epochs, stop - start
        if s < W:
            return base * s / W
        return self.eta_min + (base - self.eta_min) * 0.5 * (
            1. + math.cos(math.pi * (s - W) / (T - W)))

    def _get_value(self):
        epoch = (self.begin + self.last_step) / self.steps_per_epoch
        return [self.factor_at(epoch, base) for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class StagewiseCosineLR(LRSchedulerMixin, StagewiseCosineParamScheduler):
    """Learning rate of :class:`StagewiseCosineParamScheduler` (dBOT's per-stage warm-up
    and cosine).

    Example::

        param_scheduler = [dict(type='StagewiseCosineLR', stage_epochs=[0, 800, 1600],
                                warmup_epochs=40, by_epoch=True,
                                convert_to_iter_based=True)]
    """
