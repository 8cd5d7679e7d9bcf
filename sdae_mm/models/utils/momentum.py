"""Momentum schedules of EMA teachers."""
import math


def cosine_momentum(step: int, total: int, base: float, final: float,
                    warmup_steps: int = 0, warmup_start: float = 0.) -> float:
    """Momentum at ``step`` of ``total`` on a half-cosine from ``base`` to ``final``.

    ``final + (base - final) * (1 + cos(pi * k / K)) / 2`` with ``k = step - warmup_steps``
    and ``K = total - warmup_steps``; during the first ``warmup_steps`` steps it rises
    linearly from ``warmup_start`` to ``base``. This is the official SdAE schedule
    (``util/cosine_scheduler.py``, one value per epoch) and RC-MAE's / BYOL's (per step):
    the last step, ``K - 1``, stays just below ``final``.

    Args:
        step (int): Index, ``0 <= step < total``.
        total (int): Number of steps of the schedule.
        base (float): First value (after warm-up).
        final (float): Value the cosine tends to.
        warmup_steps (int): Linear warm-up steps. Defaults to 0.
        warmup_start (float): Warm-up start value. Defaults to 0.

    Returns:
        float: The momentum.
    """
    if total <= warmup_steps:
        raise ValueError(f'momentum schedule of {total} steps with {warmup_steps} warm-up steps')
    step = min(max(int(step), 0), total - 1)
    if step < warmup_steps:
        if warmup_steps == 1:
            return float(warmup_start)
        # numpy.linspace(start, base, warmup_steps)[step]
        return warmup_start + (base - warmup_start) * step / (warmup_steps - 1)
    k, K = step - warmup_steps, total - warmup_steps
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * k / K))
