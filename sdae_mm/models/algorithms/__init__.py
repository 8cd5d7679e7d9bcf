from .base import TeacherStudentSelfSupervisor
from .sdae import SdAE

__all__ = ['TeacherStudentSelfSupervisor', 'SdAE']
from .dbot import DBOT  # noqa: E402
from .rc_mae import RCMAE  # noqa: E402

__all__ += ['DBOT', 'RCMAE']
