"""RC-MAE: Reconstruction-Consistent Masked Auto-Encoder."""
import copy
from typing import Dict, List, Optional

import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .base import TeacherStudentSelfSupervisor


@MODELS.register_module()
class RCMAE(TeacherStudentSelfSupervisor):
    """`Exploring the Role of Mean Teachers in Self-supervised Masked Auto-Encoders
    (RC-MAE) <https://arxiv.org/abs/2210.02077>`_.

    An MAE student (encoder over the visible patches, decoder predicting the pixels of
    every patch) plus an EMA teacher that is a whole MAE too (encoder ``teacher``,
    decoder ``teacher_neck``). The teacher sees the same visible patches as the student;
    the loss is MAE's reconstruction loss on the masked patches plus ``gamma`` times the
    squared distance between the student's and the teacher's reconstructions on the
    masked patches (:class:`RCMAEHead`). The teacher starts as a copy of the student and
    follows it by EMA every iteration (:class:`TeacherEMAHook` with
    ``update_interval='iter'``).

    Args:
        backbone (dict): Student encoder (:class:`MIMVisionTransformer`).
        neck (dict): Student decoder (:class:`MIMDecoder`, ``out_channels = p * p * 3``).
        head (dict): :class:`RCMAEHead`.
        teacher (dict, optional): Teacher encoder; defaults to the backbone's config with
            drop path 0 (the official models have none).
        teacher_neck (dict, optional): Teacher decoder; defaults to the neck's config.
        teacher_init (str): ``'student'`` (official: the teacher starts as the student) or
            ``'random'``. Defaults to ``'student'``.
        **kwargs: Other arguments of :class:`TeacherStudentSelfSupervisor`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher: Optional[dict] = None,
                 teacher_neck: Optional[dict] = None,
                 teacher_init: str = 'student',
                 **kwargs) -> None:
        if teacher_init == 'pretrained':
            raise ValueError("RCMAE supports teacher_init 'student' or 'random', got "
                             "'pretrained' (its teacher includes the decoder)")
        if teacher is None:
            teacher = dict(copy.deepcopy(backbone), drop_path_rate=0.)
        if teacher_neck is None:
            teacher_neck = copy.deepcopy(neck)
        super().__init__(backbone=backbone, neck=neck, head=head, teacher=teacher,
                         teacher_neck=teacher_neck, teacher_init=teacher_init, **kwargs)

    def teacher_forward(self, inputs: torch.Tensor, ids_keep: torch.Tensor,
                        ids_restore: torch.Tensor) -> torch.Tensor:
        """Teacher reconstruction of every patch from the visible ones, ``(B, L, p*p*3)``."""
        return self.teacher_neck(self.teacher.forward_masked(inputs, ids_keep), ids_restore)

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Reconstruction and consistency losses of one batch.

        Args:
            inputs (Tensor): Normalised images ``(B, 3, H, W)``.
            data_samples (list[DataSample]): Samples with ``ids_shuffle`` and ``mask``.

        Returns:
            dict[str, Tensor]: ``loss_rec`` (MAE) and ``loss_rc`` (gamma x consistency).
        """
        ids_shuffle, num_visible, mask = self.mask_from_samples(data_samples, inputs.device)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :num_visible]

        pred = self.neck(self.backbone.forward_masked(inputs, ids_keep), ids_restore)
        with torch.no_grad():
            teacher_pred = self.teacher_forward(inputs, ids_keep, ids_restore)

        return self.head.loss(pred, inputs, mask, teacher_pred)
