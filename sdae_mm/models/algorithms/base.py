"""Teacher-student machinery shared by SdAE, dBOT and RC-MAE."""
import copy
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import MessageHub, print_log
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ...checkpoint import load_encoder, load_state_dict_strict
from ..utils import use_gelu_recompute

TEACHER_INIT_MODES = ('random', 'student', 'pretrained')


class TeacherStudentSelfSupervisor(BaseSelfSupervisor):
    """Base of masked image modeling with a teacher that has no gradient.

    It owns the teacher (built from ``teacher`` or, by default, from the student backbone's
    config without drop path), keeps it frozen and in eval mode, checks that it matches the
    module it follows (:meth:`teacher_source`), initialises it, and updates it by EMA
    (:meth:`update_teacher`, called by :class:`TeacherEMAHook`) or by copying the student
    (:meth:`copy_student_to_teacher`, dBOT). The masks come from the data samples
    (``ids_shuffle``); a non-finite loss stops training before any parameter changes.

    Args:
        backbone (dict): Student encoder config.
        neck (dict): Student decoder config.
        head (dict): Loss head config.
        teacher (dict, optional): Teacher config. Defaults to the backbone config with
            ``drop_path_rate=0``.
        teacher_neck (dict, optional): A teacher decoder that follows the student's neck
            (RC-MAE's teacher is the whole MAE); saved under ``teacher_neck.``. Defaults
            to None (the teacher is an encoder only).
        teacher_init (str): ``'random'``: the teacher keeps its own initialisation (official
            SdAE and dBOT's first stage); ``'student'``: a copy of the student (RC-MAE);
            ``'pretrained'``: loaded from ``teacher_checkpoint``. Defaults to ``'random'``.
        teacher_checkpoint (str, optional): Checkpoint for ``teacher_init='pretrained'``:
            any checkpoint :mod:`sdae_mm.checkpoint` reads (its teacher encoder when it has
            one, else its encoder), e.g. an sdae-mm or official pretraining checkpoint or a
            converted backbone.
        recompute_gelu (bool): Keep only the hidden pre-activation of the student's and
            the decoder's MLPs for the backward pass and recompute GELU there
            (:func:`~sdae_mm.models.utils.use_gelu_recompute`): about a quarter less
            activation memory per block for one GELU more; same results. Defaults to
            False.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher: Optional[dict] = None,
                 teacher_neck: Optional[dict] = None,
                 teacher_init: str = 'random',
                 teacher_checkpoint: Optional[str] = None,
                 recompute_gelu: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if teacher_init not in TEACHER_INIT_MODES:
            raise ValueError(f'teacher_init must be one of {TEACHER_INIT_MODES}, '
                             f'got {teacher_init!r}')
        if teacher_init == 'pretrained' and not teacher_checkpoint:
            raise ValueError("teacher_init='pretrained' needs teacher_checkpoint")
        super().__init__(
            backbone=backbone, neck=neck, head=head,
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.recompute_gelu = bool(recompute_gelu)
        if self.recompute_gelu and not (use_gelu_recompute(self.backbone) +
                                        use_gelu_recompute(self.neck)):
            raise ValueError('recompute_gelu=True, but neither the backbone nor the neck has '
                             'an FFN of Linear, exact GELU, Linear without dropout')
        if teacher is None:
            teacher = copy.deepcopy(backbone)
            teacher['drop_path_rate'] = 0.
        self.teacher = self.build_teacher(teacher)
        self.teacher_neck = None if teacher_neck is None else self.build_teacher(teacher_neck)
        for _, module, _ in self.teacher_groups():
            module.requires_grad_(False)
            module.eval()
        self.teacher_init = teacher_init
        self.teacher_checkpoint = teacher_checkpoint
        self.check_teacher()

    # -------------------------------------------------------------- teacher
    def build_teacher(self, cfg: Union[dict, nn.Module]) -> nn.Module:
        """Build the teacher module from its config."""
        return cfg if isinstance(cfg, nn.Module) else MODELS.build(cfg)

    def teacher_source(self) -> nn.Module:
        """The student module the teacher follows (EMA source). Default: the backbone."""
        return self.backbone

    def teacher_groups(self) -> List[Tuple[str, nn.Module, nn.Module]]:
        """``(attribute, teacher module, student module it follows)`` for each teacher part:
        the encoder (``teacher`` follows :meth:`teacher_source`) and, when built, the
        decoder (``teacher_neck`` follows ``neck``)."""
        groups = [('teacher', self.teacher, self.teacher_source())]
        if getattr(self, 'teacher_neck', None) is not None:
            groups.append(('teacher_neck', self.teacher_neck, self.neck))
        return groups

    def teacher_pairs(self) -> List[Tuple[str, nn.Parameter, nn.Parameter]]:
        """``(name, teacher_param, source_param)`` for every teacher parameter."""
        pairs = []
        for _, teacher, source_module in self.teacher_groups():
            source = dict(source_module.named_parameters())
            pairs += [(name, p, source[name]) for name, p in teacher.named_parameters()]
        return pairs

    def check_teacher(self) -> None:
        """Raise if the teacher's parameters do not match its source's by name and shape."""
        for attr, teacher_module, source_module in self.teacher_groups():
            self._check_teacher_part(attr, teacher_module, source_module)

    def _check_teacher_part(self, attr: str, teacher_module: nn.Module,
                            source_module: nn.Module) -> None:
        teacher = {k: tuple(v.shape) for k, v in teacher_module.named_parameters()}
        source = {k: tuple(v.shape) for k, v in source_module.named_parameters()}
        missing = sorted(set(teacher) - set(source))
        extra = sorted(set(source) - set(teacher))
        shapes = sorted(f'{k}: teacher {teacher[k]} vs student {source[k]}'
                        for k in set(teacher) & set(source) if teacher[k] != source[k])
        if missing or extra or shapes:
            lines = []
            if missing:
                lines.append(f'only in the teacher: {missing[:8]}')
            if extra:
                lines.append(f'only in the student: {extra[:8]}')
            if shapes:
                lines.append(f'shape mismatch: {shapes[:8]}')
            what = 'teacher' if attr == 'teacher' else f'teacher ({attr})'
            raise ValueError(f'{type(self).__name__}: the {what} does not match the student '
                             'it follows (' + '; '.join(lines) + ')')

    def train(self, mode: bool = True) -> 'TeacherStudentSelfSupervisor':
        """Switch the student's mode; the teacher always stays in eval mode."""
        super().train(mode)
        for _, module, _ in self.teacher_groups():
            module.eval()
        return self

    def init_weights(self) -> None:
        """Initialise student and teacher, then apply ``teacher_init``."""
        super().init_weights()
        if self.teacher_init == 'student':
            self.copy_student_to_teacher()
        elif self.teacher_init == 'pretrained':
            self.load_teacher(self.teacher_checkpoint)

    @torch.no_grad()
    def copy_student_to_teacher(self) -> None:
        """Make the teacher an exact copy of its source."""
        for _, t, s in self.teacher_pairs():
            t.copy_(s)

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """EMA step: ``teacher = momentum * teacher + (1 - momentum) * source``.

        The same arithmetic as the official loops (``t.mul_(m).add_((1 - m) * s)``), over
        parameters, fused with ``torch._foreach`` ops.
        """
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f'EMA momentum must be in [0, 1], got {momentum}')
        pairs = self.teacher_pairs()
        teacher = [t for _, t, _ in pairs]
        source = [s.detach() for _, _, s in pairs]
        torch._foreach_mul_(teacher, momentum)
        torch._foreach_add_(teacher, torch._foreach_mul(source, 1.0 - momentum))

    def load_teacher(self, path: str) -> None:
        """Load the teacher encoder from a checkpoint, strictly.

        Any layout :mod:`sdae_mm.checkpoint` reads: its teacher encoder when it has one,
        else its (only or student) encoder; missing, unexpected or mis-shaped keys are an
        error naming them.
        """
        state_dict, meta = load_encoder(path, target='mmpretrain', prefer_teacher=True)
        load_state_dict_strict(self.teacher, state_dict, path)
        print_log(f"teacher loaded from {path} ({meta['format']}, {meta['branch']} "
                  'encoder)', logger='current')

    # ------------------------------------------------------------------ data
    @staticmethod
    def mask_from_samples(data_samples: List[DataSample],
                          device: torch.device) -> Tuple[torch.Tensor, int, torch.Tensor]:
        """The samples' masks: ``ids_shuffle`` (B, L), the number of visible patches and
        ``mask`` (B, L) float, 1 = masked, checked against the permutation."""
        try:
            ids = [torch.as_tensor(ds.ids_shuffle) for ds in data_samples]
            masks = [torch.as_tensor(ds.mask) for ds in data_samples]
        except AttributeError as err:
            raise KeyError('data samples carry no ids_shuffle/mask: add a mask generator '
                           "(e.g. MultiFoldMaskGenerator) and PackInputs(algorithm_keys="
                           "['ids_shuffle']) to the pipeline") from err
        num_visible = {int(m.numel() - m.sum()) for m in masks}
        if len(num_visible) != 1:
            raise ValueError(f'samples of one batch have different visible counts: {num_visible}')
        ids_shuffle = torch.stack(ids).long()
        mask = torch.stack(masks).float()
        num_visible = num_visible.pop()
        # checked where the samples are (the CPU), before the copy: no device sync per step
        if mask.gather(1, ids_shuffle[:, :num_visible]).any():
            raise ValueError('the samples\' mask marks patches as masked that ids_shuffle puts '
                             'among the visible ones: mask and ids_shuffle disagree')
        return ids_shuffle.to(device), num_visible, mask.to(device)

    # ------------------------------------------------------------- training
    def parse_losses(self, losses: Dict[str, torch.Tensor]):
        """mmengine's loss parsing, plus a stop on a non-finite loss.

        Raised before the optimizer step, so no parameter or checkpoint sees the bad value;
        the message names the last checkpoint saved while the run was healthy
        (:class:`DivergenceGuardHook` records it).
        """
        loss, log_vars = super().parse_losses(losses)
        if not torch.isfinite(loss).item():
            hub = MessageHub.get_current_instance()
            terms = ', '.join(f'{k}={float(v):.6g}' for k, v in log_vars.items())
            safe = hub.get_info('last_safe_checkpoint')
            raise FloatingPointError(
                f'non-finite loss at iteration {hub.get_info("iter", "?")} '
                f'(epoch {hub.get_info("epoch", "?")}): {terms}; training stopped before the '
                'optimizer step. ' + (f'The last checkpoint safe to resume from is {safe}.'
                                      if safe else 'No checkpoint was recorded as safe '
                                      '(DivergenceGuardHook, added by tools/train.py).'))
        return loss, log_vars

    def extract_feat(self, inputs: torch.Tensor, **kwargs):
        """Student encoder features of whole images (no mask)."""
        return self.backbone(inputs)


__all__ = ['TeacherStudentSelfSupervisor', 'TEACHER_INIT_MODES']
