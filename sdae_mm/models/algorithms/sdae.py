"""SdAE: Self-distillated Masked Autoencoder."""
from typing import Dict, List, Optional

import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .base import TeacherStudentSelfSupervisor


@MODELS.register_module()
class SdAE(TeacherStudentSelfSupervisor):
    """`SdAE: Self-distillated Masked Autoencoder <https://arxiv.org/abs/2208.00449>`_.

    The student (an MAE encoder over the visible patches and a decoder over all positions)
    predicts, for masked patches, the features an EMA teacher computes for them. The teacher
    sees only masked patches, in multi-fold views: the first ``num_teacher_tokens`` masked
    patches of each sample are split into ``num_folds`` consecutive groups and each group,
    with the cls token, is a separate teacher sequence; all views of a batch run as one
    batched call. The teacher's outputs are normalised per token without parameters and
    compared with the student's predictions by the head's loss (cosine, as the official
    loop computes it).

    Args:
        backbone (dict): Student encoder (:class:`MIMVisionTransformer`).
        neck (dict): Student decoder (:class:`MIMDecoder`, out width = teacher width).
        head (dict): :class:`FeatureDistillHead` with :class:`CosineDistanceLoss`.
        num_teacher_tokens (int, optional): Official ``shrink_num``; ``None`` = all masked
            patches. The remainder after dividing by ``num_folds`` is dropped, as officially.
            Defaults to 147.
        num_folds (int): Official ``ncrop_loss``. Defaults to 3.
        teacher (dict, optional): Teacher config; defaults to the backbone's without drop
            path, with timm's initialisation as in the official code.
        teacher_init (str): See :class:`TeacherStudentSelfSupervisor`. Defaults to
            ``'random'`` (official).
        **kwargs: Other arguments of :class:`TeacherStudentSelfSupervisor`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 num_teacher_tokens: Optional[int] = 147,
                 num_folds: int = 3,
                 teacher: Optional[dict] = None,
                 teacher_init: str = 'random',
                 **kwargs) -> None:
        if teacher is None:
            teacher = dict(backbone, drop_path_rate=0., init_mode='timm',
                           fixed_pos_embed=False)
        if not isinstance(num_folds, int) or num_folds < 1:
            raise ValueError(f'num_folds must be a positive int, got {num_folds!r}')
        if num_teacher_tokens is not None and num_teacher_tokens < num_folds:
            raise ValueError(f'num_teacher_tokens={num_teacher_tokens} is smaller than '
                             f'num_folds={num_folds}')
        super().__init__(backbone=backbone, neck=neck, head=head, teacher=teacher,
                         teacher_init=teacher_init, **kwargs)
        self.num_teacher_tokens = num_teacher_tokens
        self.num_folds = num_folds

    def teacher_token_count(self, num_masked: int) -> int:
        """Masked patches the teacher sees for ``num_masked`` masked patches."""
        n = num_masked if self.num_teacher_tokens is None else self.num_teacher_tokens
        if n > num_masked:
            raise ValueError(f'num_teacher_tokens={n} exceeds the {num_masked} masked patches '
                             'of the batch; lower it or raise the mask ratio')
        return n - n % self.num_folds

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Distillation loss of one batch.

        Args:
            inputs (Tensor): Normalised images ``(B, 3, H, W)``.
            data_samples (list[DataSample]): Samples with ``ids_shuffle`` and ``mask``.

        Returns:
            dict[str, Tensor]: ``{'loss': ...}``.
        """
        ids_shuffle, num_visible, _ = self.mask_from_samples(data_samples, inputs.device)
        num_teacher = self.teacher_token_count(ids_shuffle.shape[1] - num_visible)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_teacher = ids_shuffle[:, num_visible:num_visible + num_teacher]

        # The teacher runs first: its transient buffers are then freed before the
        # student's activations (which live until the backward pass) are allocated, so
        # they do not add to the peak memory. It draws no random numbers, so the order
        # does not change the student's drop path.
        with torch.no_grad():
            target = self.teacher.forward_views(inputs, ids_teacher, self.num_folds)
        latent = self.backbone.forward_masked(inputs, ids_shuffle[:, :num_visible])
        # the decoder's last block and prediction run only where the loss looks
        pred = self.neck(latent, ids_restore, query_ids=ids_teacher)
        return dict(loss=self.head.loss(pred, target, self.num_folds))
