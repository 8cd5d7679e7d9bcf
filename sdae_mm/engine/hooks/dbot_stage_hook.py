"""Stage switches of dBOT's multi-stage bootstrapping."""
from typing import Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model


@HOOKS.register_module()
class DBOTStageHook(Hook):
    """Starts dBOT's next stage at each stage boundary.

    After epoch ``e`` (1-based count of finished epochs) with ``e`` in ``stage_epochs``
    and ``e`` not the last epoch, the model's :meth:`DBOT.start_next_stage` runs: the
    teacher takes the student's weights and the student is re-initialised. As in the
    official code the optimizer state (AdamW moments, step counts) goes on;
    ``reset_optimizer=True`` clears it instead. The learning rate follows its scheduler
    (for the official per-stage warm-up and cosine use :class:`StagewiseCosineLR` with the
    same ``stage_epochs``).

    The switch runs before the checkpoint of that epoch is written, so a checkpoint always
    holds the stage its epoch belongs to; the model keeps its stage in a buffer, so a
    resumed run restores the right teacher, and :meth:`before_train` checks that the
    model's stage agrees with the epoch it resumes at.

    Args:
        stage_epochs (Sequence[int]): Stage boundaries in epochs, official
            ``--stage_epochs``, e.g. ``(0, 800, 1600)``: two stages of 800 epochs. Must
            start with 0 and increase strictly.
        reset_optimizer (bool): Clear the optimizer state at each switch. Defaults to
            False (official).
    """

    priority = 'ABOVE_NORMAL'  # before the CheckpointHook of the same epoch

    def __init__(self, stage_epochs: Sequence[int], reset_optimizer: bool = False) -> None:
        stage_epochs = [int(e) for e in stage_epochs]
        if len(stage_epochs) < 2 or stage_epochs[0] != 0 or any(
                b <= a for a, b in zip(stage_epochs, stage_epochs[1:])):
            raise ValueError('stage_epochs must start with 0 and increase strictly, with at '
                             f'least one stage, got {stage_epochs}')
        self.stage_epochs = stage_epochs
        self.reset_optimizer = reset_optimizer
        self.num_switches = 0

    @staticmethod
    def _model(runner):
        return get_ori_model(runner.model)

    def _switch_epochs(self, max_epochs: int):
        return [e for e in self.stage_epochs[1:] if e < max_epochs]

    def expected_stage(self, epoch: int, max_epochs: int) -> int:
        """Stage that training resumed after ``epoch`` finished epochs is in."""
        return sum(1 for e in self._switch_epochs(max_epochs) if e <= epoch)

    def before_train(self, runner) -> None:
        """Check the schedule against the run and the model's stage against the epoch."""
        model = self._model(runner)
        if not hasattr(model, 'start_next_stage'):
            raise TypeError(f'DBOTStageHook needs a DBOT model, got {type(model).__name__}')
        if runner.max_epochs is None:
            raise ValueError('DBOTStageHook needs an epoch-based train loop')
        if self.stage_epochs[-1] != runner.max_epochs:
            print_log(f'DBOTStageHook: stage_epochs {self.stage_epochs} do not end at '
                      f'max_epochs={runner.max_epochs}', logger='current', level=30)
        num_stages = len(self._switch_epochs(runner.max_epochs)) + 1
        depths = getattr(model, 'teacher_depths', None)
        if depths is not None and len(depths) < num_stages:
            print_log(f'DBOTStageHook: {num_stages} stages but teacher_depths={depths}; '
                      'later stages use the last depth', logger='current', level=30)
        expected = self.expected_stage(runner.epoch, runner.max_epochs)
        if model.current_stage != expected:
            raise ValueError(
                f'the model is in dBOT stage {model.current_stage} but epoch {runner.epoch} '
                f'belongs to stage {expected} with stage_epochs={self.stage_epochs}; the '
                'checkpoint does not match this schedule')

    def after_train_epoch(self, runner) -> None:
        """Start the next stage when a boundary epoch has just finished."""
        finished = runner.epoch + 1
        if finished not in self._switch_epochs(runner.max_epochs):
            return
        self._model(runner).start_next_stage()
        if self.reset_optimizer:
            runner.optim_wrapper.optimizer.state.clear()
            print_log('DBOTStageHook: optimizer state cleared', logger='current')
        self.num_switches += 1

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Record the stage and the schedule in the checkpoint's meta."""
        checkpoint.setdefault('meta', {})['dbot'] = dict(
            stage=self._model(runner).current_stage, stage_epochs=list(self.stage_epochs),
            reset_optimizer=self.reset_optimizer)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Warn when the checkpoint was written with a different stage schedule."""
        state = checkpoint.get('meta', {}).get('dbot')
        if state is not None and state.get('stage_epochs') != self.stage_epochs:
            print_log(f'DBOTStageHook: the checkpoint was trained with stage_epochs='
                      f'{state.get("stage_epochs")}, this run uses {self.stage_epochs}',
                      logger='current', level=30)
