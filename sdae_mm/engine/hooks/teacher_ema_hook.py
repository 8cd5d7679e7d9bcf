"""EMA update of a teacher at its own granularity."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model

from ...models.utils import cosine_momentum

UPDATE_INTERVALS = ('epoch', 'iter')
SCHEDULE_UNITS = ('epoch', 'iter', 'epoch_step')


@HOOKS.register_module()
class TeacherEMAHook(Hook):
    """Updates ``model.teacher`` by EMA of the student, on a cosine momentum schedule.

    The model must provide ``update_teacher(momentum)`` (see
    :class:`TeacherStudentSelfSupervisor`).

    - SdAE (official ``ema_op=per_epoch``): ``update_interval='epoch'``,
      ``schedule_unit='epoch'``: after each epoch ``e``, momentum ``m[e]`` of a schedule
      with one value per epoch. Official ``per_ite``: ``update_interval='iter'``,
      ``schedule_unit='epoch'`` (every iteration, with its epoch's value).
    - RC-MAE: ``update_interval='iter'``, ``schedule_unit='epoch_step'`` (the official
      run, the recipes' default: a schedule of one value per step of the run, indexed by
      the step *within the epoch*, so the momentum restarts every epoch), or
      ``schedule_unit='iter'`` (the paper's description: the same schedule indexed by the
      global step). See docs/fidelity.md.

    ``momentum_at`` is the single definition of the schedule; ``print_recipe.py`` reports
    the momentum through it.

    The schedule is a function of the runner's epoch and iteration, which a resumed run
    restores; the hook also saves its settings and update count in the checkpoint and
    checks them on resume.

    Args:
        momentum (float): First momentum. Defaults to 0.96 (SdAE ViT-B 300 epochs).
        end_momentum (float): Value the cosine tends to. Defaults to 0.99.
        update_interval (str): ``'epoch'`` or ``'iter'``. Defaults to ``'epoch'``.
        schedule_unit (str): ``'epoch'``, ``'iter'`` or ``'epoch_step'``. Defaults to
            ``'epoch'``.
        warmup (int): Warm-up length in schedule units (official
            ``momentum_teacher_warmup_ep``). Defaults to 0.
        warmup_momentum (float): Warm-up start value. Defaults to 0.
    """

    priority = 'ABOVE_NORMAL'  # before checkpointing in the same after_train_* call

    def __init__(self,
                 momentum: float = 0.96,
                 end_momentum: float = 0.99,
                 update_interval: str = 'epoch',
                 schedule_unit: str = 'epoch',
                 warmup: int = 0,
                 warmup_momentum: float = 0.) -> None:
        if update_interval not in UPDATE_INTERVALS:
            raise ValueError(f'update_interval must be one of {UPDATE_INTERVALS}, got '
                             f'{update_interval!r}')
        if schedule_unit not in SCHEDULE_UNITS:
            raise ValueError(f'schedule_unit must be one of {SCHEDULE_UNITS}, got '
                             f'{schedule_unit!r}')
        if update_interval == 'epoch' and schedule_unit != 'epoch':
            raise ValueError("update_interval='epoch' needs schedule_unit='epoch'")
        for name, value in (('momentum', momentum), ('end_momentum', end_momentum),
                            ('warmup_momentum', warmup_momentum)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name} must be in [0, 1], got {value}')
        self.momentum = momentum
        self.end_momentum = end_momentum
        self.update_interval = update_interval
        self.schedule_unit = schedule_unit
        self.warmup = warmup
        self.warmup_momentum = warmup_momentum
        self.num_updates = 0
        self.last_momentum: Optional[float] = None

    # ------------------------------------------------------------- schedule
    def momentum_at(self, runner, batch_idx: Optional[int] = None) -> float:
        """Momentum of the update about to happen."""
        if self.schedule_unit == 'epoch':
            if runner.max_epochs is None or runner.max_epochs <= 0:
                raise ValueError("schedule_unit='epoch' needs an epoch-based train loop")
            step, total = runner.epoch, runner.max_epochs
        elif self.schedule_unit == 'iter':
            step, total = runner.iter, runner.max_iters
        else:
            step, total = batch_idx, runner.max_iters
        return cosine_momentum(step, total, self.momentum, self.end_momentum, self.warmup,
                               self.warmup_momentum)

    def _update(self, runner, momentum: float) -> None:
        model = get_ori_model(runner.model)
        model.update_teacher(momentum)
        self.num_updates += 1
        self.last_momentum = momentum
        runner.message_hub.update_scalar('train/teacher_momentum', momentum)

    # ---------------------------------------------------------------- hooks
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """EMA step after the optimizer step (``update_interval='iter'``)."""
        if self.update_interval == 'iter':
            self._update(runner, self.momentum_at(runner, batch_idx))

    def after_train_epoch(self, runner) -> None:
        """EMA step at the end of the epoch (``update_interval='epoch'``)."""
        if self.update_interval == 'epoch':
            momentum = self.momentum_at(runner)
            self._update(runner, momentum)
            print_log(f'teacher EMA after epoch {runner.epoch + 1}: momentum {momentum:.6f}',
                      logger='current')

    def _settings(self) -> dict:
        return dict(momentum=self.momentum, end_momentum=self.end_momentum,
                    update_interval=self.update_interval, schedule_unit=self.schedule_unit,
                    warmup=self.warmup, warmup_momentum=self.warmup_momentum)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the schedule's settings and position."""
        checkpoint.setdefault('meta', {})['teacher_ema'] = dict(
            self._settings(), num_updates=self.num_updates, last_momentum=self.last_momentum)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the schedule's position; warn when its settings changed."""
        state = checkpoint.get('meta', {}).get('teacher_ema')
        if state is None:
            return
        self.num_updates = state['num_updates']
        self.last_momentum = state['last_momentum']
        changed = {k: (state.get(k), v) for k, v in self._settings().items()
                   if state.get(k) != v}
        if changed:
            print_log(f'TeacherEMAHook settings differ from the checkpoint: {changed}',
                      logger='current', level=30)
