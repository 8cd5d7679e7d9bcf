from .base import TeacherStudentSelfSupervisor
from .sdae import SdAE

__all__ = ['TeacherStudentSelfSupervisor', 'SdAE']
