"""Patch mask generators for masked image modeling, as mmpretrain data transforms.

A sample's mask is described by ``ids_shuffle``: a permutation of the ``L`` patch indices
with the visible patches first and the masked ones after, drawn as ``argsort`` of uniform
noise like the official MAE / SdAE / dBOT / RC-MAE code. ``mask`` (``L``, 1 = masked) is
written beside it. Algorithms read both from the data samples and never draw their own mask.
"""
import warnings
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS


def _to_2tuple(value: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f'{name} must be an int or a pair of ints, got {value!r}')


@TRANSFORMS.register_module()
class RandomPatchMaskGenerator(BaseTransform):
    """Random patch masking of MAE, dBOT and RC-MAE.

    Draws uniform noise per patch and sorts it: the ``int(L * (1 - mask_ratio))`` patches
    with the smallest noise are visible, the rest masked (`MAE
    <https://arxiv.org/abs/2111.06377>`_).

    **Added keys:** ``ids_shuffle`` (np.int64, ``(L,)``), ``mask`` (np.uint8, ``(L,)``,
    1 = masked).

    Args:
        input_size (int | tuple[int, int]): Image size (H, W) the model sees. The image in
            ``results['img']`` must have this size. Defaults to 224.
        patch_size (int): Patch size. ``input_size`` must be a multiple. Defaults to 16.
        mask_ratio (float): Fraction of masked patches, in (0, 1). Defaults to 0.75.
    """

    def __init__(self,
                 input_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 16,
                 mask_ratio: float = 0.75) -> None:
        self.input_size = _to_2tuple(input_size, 'input_size')
        if not isinstance(patch_size, int) or patch_size <= 0:
            raise ValueError(f'patch_size must be a positive int, got {patch_size!r}')
        for dim in self.input_size:
            if dim % patch_size:
                raise ValueError(
                    f'input_size {self.input_size} is not a multiple of '
                    f'patch_size {patch_size}')
        if not 0.0 < float(mask_ratio) < 1.0:
            raise ValueError(f'mask_ratio must be in (0, 1), got {mask_ratio!r}')
        self.patch_size = patch_size
        self.mask_ratio = float(mask_ratio)
        self.grid = (self.input_size[0] // patch_size, self.input_size[1] // patch_size)
        self.num_patches = self.grid[0] * self.grid[1]
        # The official code computes int(L * (1 - ratio)) in float arithmetic.
        self.num_visible = int(self.num_patches * (1 - self.mask_ratio))
        if self.num_visible < 1:
            raise ValueError(f'mask_ratio {mask_ratio} leaves no visible patch of '
                             f'{self.num_patches}')
        self.num_masked = self.num_patches - self.num_visible

    def _check_image(self, results: dict) -> None:
        img = results.get('img')
        if img is not None and tuple(img.shape[:2]) != self.input_size:
            raise ValueError(
                f'{type(self).__name__}: image {results.get("img_path", "")} has size '
                f'{tuple(img.shape[:2])} but input_size is {self.input_size}; put the mask '
                'generator after the resize/crop transforms')

    def draw(self) -> np.ndarray:
        """Draw one ``ids_shuffle`` from numpy's global generator (seeded by mmengine)."""
        noise = np.random.random_sample(self.num_patches)
        return np.argsort(noise, kind='stable').astype(np.int64)

    def transform(self, results: dict) -> dict:
        """Add ``ids_shuffle`` and ``mask`` to ``results``."""
        self._check_image(results)
        ids_shuffle = self.draw()
        mask = np.ones(self.num_patches, dtype=np.uint8)
        mask[ids_shuffle[:self.num_visible]] = 0
        results['ids_shuffle'] = ids_shuffle
        results['mask'] = mask
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(input_size={self.input_size}, '
                f'patch_size={self.patch_size}, mask_ratio={self.mask_ratio})')


@TRANSFORMS.register_module()
class MultiFoldMaskGenerator(RandomPatchMaskGenerator):
    """Random masking plus SdAE's multi-fold teacher views.

    The first ``num_teacher_tokens`` masked patches of a sample (official ``shrink_num``)
    are split into ``num_folds`` (official ``ncrop_loss``) consecutive groups; each group,
    with the cls token, is one teacher sequence (`SdAE <https://arxiv.org/abs/2208.00449>`_).
    The folds are consecutive slices of the masked part of ``ids_shuffle``, so the mask is
    still fully described by ``ids_shuffle``; :meth:`fold_ids` returns them.

    Like the official code, when ``num_teacher_tokens`` is not a multiple of ``num_folds``
    the remainder is dropped (with a warning).

    Args:
        input_size (int | tuple[int, int]): Image size. Defaults to 224.
        patch_size (int): Patch size. Defaults to 16.
        mask_ratio (float): Fraction of masked patches. Defaults to 0.75.
        num_teacher_tokens (int, optional): Masked patches the teacher sees; ``None`` means
            all masked patches. Defaults to 147 (ViT-B/16 at 224, 75% masking).
        num_folds (int): Number of teacher views. Defaults to 3.
    """

    def __init__(self,
                 input_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 16,
                 mask_ratio: float = 0.75,
                 num_teacher_tokens: Optional[int] = 147,
                 num_folds: int = 3) -> None:
        super().__init__(input_size, patch_size, mask_ratio)
        if num_teacher_tokens is None:
            num_teacher_tokens = self.num_masked
        if not isinstance(num_folds, int) or num_folds < 1:
            raise ValueError(f'num_folds must be a positive int, got {num_folds!r}')
        if not isinstance(num_teacher_tokens, int) or num_teacher_tokens < 1:
            raise ValueError('num_teacher_tokens must be a positive int, got '
                             f'{num_teacher_tokens!r}')
        if num_teacher_tokens > self.num_masked:
            raise ValueError(
                f'num_teacher_tokens={num_teacher_tokens} exceeds the {self.num_masked} '
                f'masked patches ({self.num_patches} patches, mask_ratio={self.mask_ratio})')
        if num_teacher_tokens < num_folds:
            raise ValueError(f'num_teacher_tokens={num_teacher_tokens} is smaller than '
                             f'num_folds={num_folds}: a fold would be empty')
        used = num_teacher_tokens - num_teacher_tokens % num_folds
        if used != num_teacher_tokens:
            warnings.warn(f'num_teacher_tokens={num_teacher_tokens} is not a multiple of '
                          f'num_folds={num_folds}; the teacher sees {used} tokens')
        self.num_teacher_tokens = used
        self.num_folds = num_folds
        self.fold_size = used // num_folds

    def fold_ids(self, ids_shuffle: np.ndarray) -> np.ndarray:
        """Patch indices of each teacher view, ``(num_folds, fold_size)``."""
        start = self.num_visible
        teacher = np.asarray(ids_shuffle)[start:start + self.num_teacher_tokens]
        return teacher.reshape(self.num_folds, self.fold_size)

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] + f', num_teacher_tokens={self.num_teacher_tokens}'
                f', num_folds={self.num_folds})')
