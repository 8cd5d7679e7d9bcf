"""Stop a diverging run before it writes a checkpoint, naming the last safe one."""
import math
import os.path as osp
from typing import List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmpretrain.utils import get_ori_model

#: Key of the message hub's runtime info that holds the last checkpoint safe to resume.
SAFE_CKPT_KEY = 'last_safe_checkpoint'


def parameter_norm(model: torch.nn.Module) -> float:
    """L2 norm of all the model's parameters (frozen ones included: a linear probe's
    small new head growing fast is not a divergence of the model)."""
    params = [p.detach() for p in model.parameters()]
    if not params:
        return 0.
    return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(params))))


@HOOKS.register_module()
class DivergenceGuardHook(Hook):
    """Detects divergence every iteration and before every checkpoint is saved.

    A run has diverged when its loss, parameter norm or (when the optimizer wrapper
    clips and logs it) gradient norm is not finite, or when the norm of all parameters
    exceeds ``factor`` times its running level: an exponential moving average over healthy
    iterations (started from the norm after ``warmup_iters``) or the level at the last
    healthy checkpoint.
    Weights that blow up (norms around 1e9) are caught before a checkpoint records them;
    healthy training moves the parameter norm by far less than a factor of 10 within a
    hundred iterations or between checkpoints.

    On divergence the run stops with ``FloatingPointError`` naming the last checkpoint
    saved while the run was healthy (or the checkpoint it resumed from), which is also
    kept in the message hub under ``'last_safe_checkpoint'`` for other error messages.
    Registered in mmengine's root registry, so mmpretrain, mmseg and mmdet configs all
    find it; ``tools/train.py`` adds it to every run (:func:`add_divergence_guard`).

    Args:
        factor (float): Parameter norm / running level above which the run has diverged.
            Defaults to 10.
        momentum (float): Weight of the old running level per iteration. Defaults to 0.99.
        warmup_iters (int): Iterations whose norm only builds the running level before it
            is compared with. Defaults to 20.
    """

    priority = 'VERY_HIGH'  # before CheckpointHook (VERY_LOW) in every stage

    def __init__(self, factor: float = 10., momentum: float = 0.99,
                 warmup_iters: int = 20) -> None:
        if not factor > 1:
            raise ValueError(f'factor must be > 1, got {factor}')
        if not 0 <= momentum < 1:
            raise ValueError(f'momentum must be in [0, 1), got {momentum}')
        self.factor = factor
        self.momentum = momentum
        self.warmup_iters = warmup_iters
        self.num_updates = 0
        self.level: Optional[float] = None
        self.level_at_save: Optional[float] = None
        self.saved: List[str] = []

    def safe_checkpoint(self) -> Optional[str]:
        """The newest checkpoint saved while healthy that still exists."""
        for path in reversed(self.saved):
            if osp.isfile(path):
                return path
        return None

    def before_train(self, runner) -> None:
        # a resumed run starts from a checkpoint that was safe when it was written
        resumed = runner.message_hub.get_info('last_ckpt')
        if getattr(runner, '_resume', False) and resumed and osp.isfile(resumed):
            self.saved.append(resumed)
            runner.message_hub.update_info(SAFE_CKPT_KEY, resumed)

    def check(self, runner, loss: Optional[float] = None) -> float:
        """Raise ``FloatingPointError`` if the run diverged; returns the parameter norm."""
        norm = parameter_norm(get_ori_model(runner.model))
        problems = []
        if loss is not None and not math.isfinite(loss):
            problems.append(f'loss is {loss}')
        hub = runner.message_hub
        if 'train/grad_norm' in hub.log_scalars:
            grad = float(hub.get_scalar('train/grad_norm').current())
            if not math.isfinite(grad):
                problems.append(f'gradient norm is {grad}')
        if not math.isfinite(norm):
            problems.append(f'parameter norm is {norm}')
        running = self.level if self.num_updates >= self.warmup_iters else None
        for what, level in (('running level', running),
                            ('level at the last checkpoint', self.level_at_save)):
            if level and math.isfinite(norm) and norm > self.factor * level:
                problems.append(f'parameter norm {norm:.4g} is {norm / level:.1f}x its '
                                f'{what} {level:.4g}')
        if problems:
            safe = self.safe_checkpoint()
            advice = (f'the last checkpoint safe to resume from is {safe}' if safe else
                      'no checkpoint of this run was saved while it was healthy')
            raise FloatingPointError(
                f'training diverged at iteration {runner.iter + 1} (epoch {runner.epoch}): '
                f'{"; ".join(problems)}. Stopped before saving a checkpoint; {advice} '
                '(lower the learning rate or add gradient clipping before resuming).')
        return norm

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        loss = None
        if isinstance(outputs, dict) and torch.is_tensor(outputs.get('loss')):
            loss = float(outputs['loss'].detach())
        norm = self.check(runner, loss)
        if self.level is None or self.num_updates < self.warmup_iters:
            self.level = norm  # the level follows the norm until the warm-up ends
        else:
            self.level = self.momentum * self.level + (1 - self.momentum) * norm
        self.num_updates += 1

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self.level_at_save = self.check(runner)
        path = runner.message_hub.get_info('last_ckpt')  # CheckpointHook sets it first
        if path:
            self.saved.append(path)
            runner.message_hub.update_info(SAFE_CKPT_KEY, path)


def add_divergence_guard(cfg) -> None:
    """Append :class:`DivergenceGuardHook` to ``cfg.custom_hooks`` unless it is there."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(h.get('type') in ('DivergenceGuardHook', DivergenceGuardHook) for h in hooks):
        hooks.append(dict(type='DivergenceGuardHook'))
    cfg.custom_hooks = hooks


__all__ = ['DivergenceGuardHook', 'add_divergence_guard', 'parameter_norm', 'SAFE_CKPT_KEY']
