from .rng_state_hook import RNGStateHook
from .teacher_ema_hook import TeacherEMAHook

__all__ = ['TeacherEMAHook', 'RNGStateHook']
from .dbot_stage_hook import DBOTStageHook  # noqa: E402

__all__ += ['DBOTStageHook']
