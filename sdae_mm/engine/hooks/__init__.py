from .dbot_stage_hook import DBOTStageHook
from .divergence_guard_hook import DivergenceGuardHook, add_divergence_guard
from .rng_state_hook import RNGStateHook
from .teacher_ema_hook import TeacherEMAHook

__all__ = [
    'TeacherEMAHook', 'RNGStateHook', 'DBOTStageHook', 'DivergenceGuardHook',
    'add_divergence_guard'
]
