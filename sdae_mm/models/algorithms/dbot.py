"""dBOT: masked image modeling with bootstrapped teachers."""
import copy
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.dist import broadcast, get_world_size
from mmengine.logging import print_log
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .base import TeacherStudentSelfSupervisor


@MODELS.register_module()
class DBOT(TeacherStudentSelfSupervisor):
    """`Exploring Target Representations for Masked Autoencoders (dBOT)
    <https://arxiv.org/abs/2209.03917>`_.

    The student (an MAE encoder over the visible patches and a decoder over all positions)
    predicts the features a teacher computes from the whole, unmasked image. The target
    is normalised per token and compared with a Smooth L1 loss (beta 2) averaged over the
    masked patches and, as in the official code, the cls position.

    Training runs in stages (multi-stage bootstrapping). At each stage boundary
    (:class:`DBOTStageHook` calls :meth:`start_next_stage`) the teacher takes the
    student's weights and the student is re-initialised; the optimizer goes on. The
    first teacher is a copy of the randomly initialised student (official), or its own
    random initialisation, or a checkpoint (``teacher_init``).

    The teacher is built as deep as the student; ``teacher_depths`` says how many of its
    blocks each stage uses (official ``--init_teacher_encoder_depth`` for the first stage,
    then ``--depth``), e.g. ``(0, 24)`` for ViT-L: a first teacher without blocks (patch
    embedding plus position embedding) and then the full student. The current stage is a
    persistent buffer (``stage``), so a checkpoint restores the teacher of its stage.

    Args:
        backbone (dict): Student encoder (:class:`MIMVisionTransformer`).
        neck (dict): Student decoder (:class:`MIMDecoder`, out width = teacher width).
        head (dict): :class:`MaskedFeatureDistillHead` with :class:`MaskedSmoothL1Loss`.
        teacher_depths (Sequence[int], optional): Teacher blocks used in each stage; the
            last value also serves any later stage. None: all blocks in every stage.
        teacher_final_norm (bool): Apply the teacher's final norm to its output (official
            ``--tlayernorm 1``). Defaults to False (official default, used by every
            published recipe).
        loss_on_cls (bool): Count the cls position in the loss, as the official code
            does (its mask gets a leading 1 for the cls token). Defaults to True.
        teacher (dict, optional): Teacher config. Defaults to the backbone's with drop
            path 0 (official ``--tdpr 0``).
        teacher_init (str): ``'student'`` (official: the first teacher is loaded from the
            freshly initialised student), ``'random'`` or ``'pretrained'`` (official
            ``--teacher_resume``). Defaults to ``'student'``.
        **kwargs: Other arguments of :class:`TeacherStudentSelfSupervisor`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher_depths: Optional[Sequence[int]] = None,
                 teacher_final_norm: bool = False,
                 loss_on_cls: bool = True,
                 teacher: Optional[dict] = None,
                 teacher_init: str = 'student',
                 **kwargs) -> None:
        if teacher is None:
            teacher = dict(copy.deepcopy(backbone), drop_path_rate=0.)
        super().__init__(backbone=backbone, neck=neck, head=head, teacher=teacher,
                         teacher_init=teacher_init, **kwargs)
        num_layers = len(self.teacher.layers)
        if teacher_depths is not None:
            teacher_depths = [int(d) for d in teacher_depths]
            if not teacher_depths:
                raise ValueError('teacher_depths must list at least one stage, got []')
            bad = [d for d in teacher_depths if not 0 <= d <= num_layers]
            if bad:
                raise ValueError(f'teacher_depths {teacher_depths}: every value must be in '
                                 f'[0, {num_layers}] (the teacher has {num_layers} blocks)')
        self.teacher_depths = teacher_depths
        self.teacher_final_norm = teacher_final_norm
        self.loss_on_cls = loss_on_cls
        self.register_buffer('stage', torch.zeros((), dtype=torch.long), persistent=True)

    # ----------------------------------------------------------------- stages
    @property
    def current_stage(self) -> int:
        """Index of the current bootstrapping stage (0 = first teacher)."""
        return int(self.stage.item())

    def teacher_depth(self, stage: Optional[int] = None) -> int:
        """Teacher blocks used at ``stage`` (default: the current one)."""
        stage = self.current_stage if stage is None else stage
        if self.teacher_depths is None:
            return len(self.teacher.layers)
        return self.teacher_depths[min(stage, len(self.teacher_depths) - 1)]

    @torch.no_grad()
    def start_next_stage(self) -> None:
        """Stage boundary: the teacher takes the student's weights (all of them, whatever
        depth the next stage uses), the student encoder and decoder are re-initialised as
        the official ``model.module.initialize_weights()`` does (the encoder's patch
        projection keeps its trained bias, see :meth:`MIMVisionTransformer.reinitialize`),
        and the stage counter advances.

        Under distributed training the re-initialised student is broadcast from rank 0 so
        that every rank continues with the same weights.
        """
        self.copy_student_to_teacher()
        self.backbone.reinitialize()
        self.neck.init_weights()
        if get_world_size() > 1:
            for module in (self.backbone, self.neck):
                for tensor in list(module.parameters()) + list(module.buffers()):
                    broadcast(tensor.data, src=0)
        self.stage += 1
        print_log(f'dBOT: stage {self.current_stage} starts; the teacher is the previous '
                  f'student ({self.teacher_depth()} blocks), the student is re-initialised',
                  logger='current')

    # ---------------------------------------------------------------- forward
    def teacher_forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Teacher features of the whole image, ``(B, 1 + L, C)`` with the cls first."""
        return self.teacher.forward_tokens(inputs, self.teacher_depth(),
                                           final_norm=self.teacher_final_norm)

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Feature prediction loss of one batch.

        Args:
            inputs (Tensor): Normalised images ``(B, 3, H, W)``.
            data_samples (list[DataSample]): Samples with ``ids_shuffle`` and ``mask``.

        Returns:
            dict[str, Tensor]: ``{'loss': ...}``.
        """
        ids_shuffle, num_visible, mask = self.mask_from_samples(data_samples, inputs.device)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        B = ids_shuffle.shape[0]

        latent = self.backbone.forward_masked(inputs, ids_shuffle[:, :num_visible])
        pred = self.neck(latent, ids_restore, keep_cls=True)  # (B, 1 + L, C)
        with torch.no_grad():
            target = self.teacher_forward(inputs)

        mask = torch.cat((torch.full((B, 1), float(self.loss_on_cls), device=mask.device),
                          mask), dim=1)
        return dict(loss=self.head.loss(pred, target, mask))
