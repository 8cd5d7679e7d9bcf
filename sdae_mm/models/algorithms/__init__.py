from .base import TeacherStudentSelfSupervisor
from .dbot import DBOT
from .rc_mae import RCMAE
from .sdae import SdAE

__all__ = ['TeacherStudentSelfSupervisor', 'SdAE', 'DBOT', 'RCMAE']
