from .rng_state_hook import RNGStateHook
from .teacher_ema_hook import TeacherEMAHook

__all__ = ['TeacherEMAHook', 'RNGStateHook']
