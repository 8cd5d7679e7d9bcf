"""Random resized crops: a decoding one for fast pretraining loaders, and MAE's variant.

:class:`DecodeRandomResizedCrop` reads the image file itself and decodes only what the crop
needs: the crop box is drawn from the image header, and when the crop is at least twice the
output size, libjpeg(-turbo) decodes at 1/2, 1/4 or 1/8 scale in the DCT domain (through
simplejpeg or Pillow's ``draft``), so the large images of ImageNet are never decoded at
full size; full-size crops are resampled by torch's vectorised antialiased filter. Pixels
stay uint8 from the decoder to the batch (the data preprocessor normalises).

:class:`ClampedRandomResizedCrop` is the crop of MAE's linear probe (one draw, clamped).
"""
import io
import math
import warnings
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine import fileio
from mmpretrain.datasets.transforms import RandomResizedCrop
from mmpretrain.registry import TRANSFORMS
from PIL import Image

try:
    import simplejpeg
except ImportError:  # pragma: no cover - optional, Pillow decodes instead
    simplejpeg = None

PIL_INTERPOLATION = {
    'nearest': Image.NEAREST,
    'bilinear': Image.BILINEAR,
    'bicubic': Image.BICUBIC,
    'box': Image.BOX,
    'lanczos': Image.LANCZOS,
    'hamming': Image.HAMMING,
}
TORCH_INTERPOLATION = ('bilinear', 'bicubic')  # antialiased in torch as in Pillow
DRAFT_SCALES = (8, 4, 2)


def random_resized_crop_params(height: int,
                               width: int,
                               scale: Tuple[float, float] = (0.08, 1.0),
                               ratio: Tuple[float, float] = (3. / 4., 4. / 3.),
                               max_attempts: int = 10) -> Tuple[int, int, int, int]:
    """Draw a crop box with torchvision's ``RandomResizedCrop`` law.

    Up to ``max_attempts`` draws of an area fraction (uniform in ``scale``) and an aspect
    ratio (log-uniform in ``ratio``); the first box that fits is placed uniformly. If none
    fits, the centred box of the whole image with its aspect ratio clamped to ``ratio``.
    Random numbers come from numpy's global generator, in the order of mmpretrain's
    ``RandomResizedCrop`` (so both give the same box for the same numpy state).

    Args:
        height (int): Image height.
        width (int): Image width.
        scale (tuple[float, float]): Range of the crop's area fraction.
        ratio (tuple[float, float]): Range of the crop's aspect ratio (w / h).
        max_attempts (int): Draws before the fallback.

    Returns:
        tuple[int, int, int, int]: ``(top, left, crop_height, crop_width)``.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(max_attempts):
        target_area = np.random.uniform(*scale) * area
        aspect_ratio = math.exp(np.random.uniform(*log_ratio))
        crop_w = int(round(math.sqrt(target_area * aspect_ratio)))
        crop_h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = np.random.randint(0, height - crop_h + 1)
            left = np.random.randint(0, width - crop_w + 1)
            return top, left, crop_h, crop_w
    in_ratio = width / height
    if in_ratio < min(ratio):
        crop_w, crop_h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        crop_h, crop_w = height, int(round(height * max(ratio)))
    else:
        crop_h, crop_w = height, width
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def draft_scale(crop_h: int, crop_w: int, out_h: int, out_w: int) -> int:
    """The largest JPEG DCT downscale (8, 4, 2 or 1) that keeps the crop >= the output."""
    room = min(crop_h // out_h, crop_w // out_w)
    return next((s for s in DRAFT_SCALES if s <= room), 1)


def _to_rgb(arr: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` from an RGB or grey (``(H, W)`` or ``(H, W, 1)``) uint8 array."""
    if arr.ndim == 2:
        arr = arr[..., None]
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr


def _to_size(scale: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(scale, int):
        return scale, scale
    if len(scale) == 2:
        return int(scale[1]), int(scale[0])  # mmpretrain: scale=(w, h)
    raise ValueError(f'scale must be an int or (w, h), got {scale!r}')


@TRANSFORMS.register_module()
class DecodeRandomResizedCrop(BaseTransform):
    """Load an image file and take a random resized crop, decoding only what it needs.

    Replaces ``LoadImageFromFile`` + ``RandomResizedCrop(backend='pillow')`` with the same
    crop law (torchvision's, see :func:`random_resized_crop_params`) and bicubic resampling.
    The crop box is drawn from the file's header. In the default fast mode:

    - a JPEG whose crop is at least twice the output size in both dimensions is decoded at
      1/2, 1/4 or 1/8 scale in libjpeg's DCT domain, keeping the scaled crop no smaller
      than the output, and every JPEG is decoded with libjpeg's fast IDCT and plain chroma
      upsampling (``fast_idct``);
    - the decoder is libjpeg-turbo through `simplejpeg <https://gitlab.com/jfolz/simplejpeg>`_
      (``decode_backend='simplejpeg'``; the same library and the same pixels as Pillow's
      decoder, without Pillow's 4-byte pixel layout and copies) or Pillow (``'pillow'``;
      ``'auto'`` takes simplejpeg when it is importable). Files that are not 8-bit
      YCbCr/RGB/grey JPEGs (PNG, CMYK JPEGs, ...) and JPEGs that libjpeg-turbo reports as
      damaged go through Pillow, which names the problem;
    - the bilinear/bicubic resampling of full-size decodes is torch's antialiased
      ``interpolate`` on uint8 (``resize_backend='torch'``; the same filter as Pillow's,
      vectorised, differing from Pillow by rounding) or Pillow's (``'pillow'``). Scaled
      decodes are resampled by Pillow, whose fractional source box keeps the crop exact.

    This changes pixels slightly (the measured PSNR against ``exact=True`` is in
    docs/speed.md); ``exact=True`` always decodes at full size with Pillow and gives
    the same pixels as ``PIL.Image.crop`` + ``resize`` (torchvision's). An unreadable file
    raises an ``OSError`` naming it.

    Grey-scale images are resized before their channels are replicated (the same pixels,
    a third of the work); other modes are converted to RGB first.

    **Required keys:** ``img_path``. **Added keys:** ``img`` (uint8, ``(H, W, 3)``, in
    ``channel_order``), ``img_shape``, ``ori_shape`` (the file's size).

    Args:
        scale (int | tuple[int, int]): Output size, ``(w, h)`` if a tuple. Defaults to 224.
        crop_ratio_range (tuple[float, float]): Range of the crop's area fraction.
            Defaults to (0.08, 1.0).
        aspect_ratio_range (tuple[float, float]): Range of the crop's aspect ratio.
            Defaults to (3/4, 4/3).
        max_attempts (int): Draws before the centre-crop fallback. Defaults to 10.
        interpolation (str): Resampling filter (Pillow's names). Defaults to 'bicubic'.
        exact (bool): Decode at full size with Pillow, with libjpeg's default (accurate)
            IDCT and chroma upsampling, and resample with Pillow, always: the pixels of
            ``LoadImageFromFile`` with Pillow + ``RandomResizedCrop``. Defaults to False.
        fast_idct (bool): When not ``exact``, decode JPEGs with libjpeg's fastest inverse
            DCT and without its smoothing chroma upsampling. Defaults to True.
        decode_backend (str): 'auto', 'simplejpeg' or 'pillow' (see above; ignored when
            ``exact``). Defaults to 'auto'.
        resize_backend (str): 'torch' or 'pillow' (see above; ignored when ``exact``).
            Defaults to 'torch'.
        channel_order (str): 'bgr' (like ``LoadImageFromFile``, for data preprocessors
            with ``to_rgb=True``) or 'rgb'. Either is a view of the decoded array.
            Defaults to 'bgr'.
        backend_args (dict, optional): mmengine file backend arguments. Defaults to None.
    """

    def __init__(self,
                 scale: Union[int, Sequence[int]] = 224,
                 crop_ratio_range: Tuple[float, float] = (0.08, 1.0),
                 aspect_ratio_range: Tuple[float, float] = (3. / 4., 4. / 3.),
                 max_attempts: int = 10,
                 interpolation: str = 'bicubic',
                 exact: bool = False,
                 fast_idct: bool = True,
                 decode_backend: str = 'auto',
                 resize_backend: str = 'torch',
                 channel_order: str = 'bgr',
                 backend_args: Optional[dict] = None) -> None:
        self.out_h, self.out_w = _to_size(scale)
        if not (0 < crop_ratio_range[0] <= crop_ratio_range[1] <= 1):
            raise ValueError(f'crop_ratio_range must be in (0, 1], got {crop_ratio_range}')
        if not (0 < aspect_ratio_range[0] <= aspect_ratio_range[1]):
            raise ValueError(f'invalid aspect_ratio_range {aspect_ratio_range}')
        if interpolation not in PIL_INTERPOLATION:
            raise ValueError(f'interpolation must be one of {sorted(PIL_INTERPOLATION)}')
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        if decode_backend not in ('auto', 'simplejpeg', 'pillow'):
            raise ValueError("decode_backend must be 'auto', 'simplejpeg' or 'pillow', "
                             f'got {decode_backend!r}')
        if decode_backend == 'simplejpeg' and simplejpeg is None:
            raise ImportError("decode_backend='simplejpeg' needs the simplejpeg package")
        if resize_backend not in ('torch', 'pillow'):
            raise ValueError(f"resize_backend must be 'torch' or 'pillow', got "
                             f'{resize_backend!r}')
        self.scale = scale
        self.crop_ratio_range = tuple(crop_ratio_range)
        self.aspect_ratio_range = tuple(aspect_ratio_range)
        self.max_attempts = max_attempts
        self.interpolation = interpolation
        self.exact = exact
        self.fast_idct = fast_idct and not exact
        self.decode_backend = decode_backend
        self.resize_backend = resize_backend
        self.use_simplejpeg = (not exact and decode_backend != 'pillow'
                               and simplejpeg is not None)
        self.use_torch_resize = (not exact and resize_backend == 'torch'
                                 and interpolation in TORCH_INTERPOLATION)
        self.channel_order = channel_order
        self.backend_args = backend_args

    @cache_randomness
    def crop_params(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """``(top, left, crop_h, crop_w)`` for an image of this size."""
        return random_resized_crop_params(height, width, self.crop_ratio_range,
                                          self.aspect_ratio_range, self.max_attempts)

    def resize_array(self, arr: np.ndarray, box: Tuple[int, int, int, int]) -> np.ndarray:
        """Resample a box of an array to the output size with torch's antialiased filter.

        Args:
            arr (np.ndarray): uint8 ``(H, W, C)``, writable.
            box (tuple): ``(top, left, h, w)`` in ``arr``'s coordinates.

        Returns:
            np.ndarray: uint8 ``(out_h, out_w, C)``.
        """
        top, left, crop_h, crop_w = box
        region = torch.from_numpy(arr[top:top + crop_h, left:left + crop_w])
        out = F.interpolate(region.permute(2, 0, 1)[None], size=(self.out_h, self.out_w),
                            mode=self.interpolation, antialias=True, align_corners=False)
        return out[0].permute(1, 2, 0).numpy()

    def crop_image(self,
                   img: Image.Image,
                   box: Optional[Tuple[int, int, int, int]] = None) -> np.ndarray:
        """Crop and resize an image opened (not yet decoded) by Pillow.

        Args:
            img (PIL.Image.Image): The opened image.
            box (tuple, optional): ``(top, left, h, w)`` in the full-size image's
                coordinates; drawn with :meth:`crop_params` if not given.

        Returns:
            np.ndarray: The RGB output, uint8 ``(out_h, out_w, 3)``.
        """
        width, height = img.size
        top, left, crop_h, crop_w = box or self.crop_params(height, width)
        s = 1 if self.exact else draft_scale(crop_h, crop_w, self.out_h, self.out_w)
        if s > 1 or self.fast_idct:
            # a no-op for non-JPEG files; libjpeg's scaled size is ceil(size / s)
            img.draft('RGB', (width // s, height // s))
            if img.size == (width, height):
                s = 1
            elif img.size != (-(-width // s), -(-height // s)):
                raise RuntimeError(f'unexpected draft size {img.size} of {(width, height)} '
                                   f'at scale 1/{s}')
            if self.fast_idct and getattr(img, 'decoderconfig', None) == (s, 0):
                # the JPEG decoder's own draft flag: libjpeg's fastest IDCT and plain
                # chroma upsampling, as Pillow's draft mode had before version 4
                img.decoderconfig = (s, 1)
        if img.mode not in ('RGB', 'L'):
            img = img.convert('RGB')
        if s == 1 and self.use_torch_resize:
            img.load()
            arr = np.array(img)  # writable, for torch
            return _to_rgb(self.resize_array(arr if arr.ndim == 3 else arr[..., None],
                                             (top, left, crop_h, crop_w)))
        return _to_rgb(np.asarray(self._pillow_resize(img, (top, left, crop_h, crop_w), s)))

    def _pillow_resize(self, img: Image.Image, box: Tuple[int, int, int, int],
                       s: int) -> Image.Image:
        top, left, crop_h, crop_w = box
        resample = PIL_INTERPOLATION[self.interpolation]
        if s == 1:
            # crop, then resize: the filter clamps at the crop's edges, as torchvision's
            return img.crop((left, top, left + crop_w, top + crop_h)).resize(
                (self.out_w, self.out_h), resample)
        # the box in the downscaled image's coordinates (fractional): one call
        region = (left / s, top / s, (left + crop_w) / s, (top + crop_h) / s)
        return img.resize((self.out_w, self.out_h), resample, box=region)

    def jpeg_header(self, data: bytes) -> Optional[Tuple[int, int, bool]]:
        """``(height, width, grey)`` of a JPEG for simplejpeg; None: leave it to Pillow."""
        if not self.use_simplejpeg or data[:2] != b'\xff\xd8':
            return None
        try:
            height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        except ValueError:
            return None  # Pillow reads it or names the problem
        if colorspace not in ('YCbCr', 'RGB', 'Gray'):
            return None  # CMYK, YCCK: Pillow's conversion, as the official loader's
        return height, width, colorspace == 'Gray'

    def decode_jpeg(self, data: bytes, height: int, width: int, grey: bool,
                    box: Tuple[int, int, int, int]) -> Optional[np.ndarray]:
        """Decode, crop and resize a JPEG with simplejpeg.

        Args:
            data (bytes): The file's bytes.
            height (int): Image height, from :meth:`jpeg_header`.
            width (int): Image width.
            grey (bool): Whether the JPEG is grey-scale (decoded as one channel).
            box (tuple): ``(top, left, h, w)`` in the full-size image's coordinates.

        Returns:
            np.ndarray | None: The RGB output, uint8 ``(out_h, out_w, 3)``; None if
            libjpeg-turbo reports damage (the caller then decodes with Pillow).
        """
        top, left, crop_h, crop_w = box
        s = draft_scale(crop_h, crop_w, self.out_h, self.out_w)
        min_h, min_w = -(-height // s), -(-width // s)
        try:
            arr = simplejpeg.decode_jpeg(
                data, colorspace='GRAY' if grey else 'RGB', fastdct=self.fast_idct,
                fastupsample=self.fast_idct, min_height=min_h, min_width=min_w,
                min_factor=s)
        except ValueError:
            return None  # e.g. extraneous bytes: Pillow decodes what it can, or raises
        if arr.shape[:2] != (min_h, min_w):
            raise RuntimeError(f'unexpected decoded size {arr.shape[:2]} of '
                               f'{(height, width)} at scale 1/{s}')
        if s == 1 and self.use_torch_resize:
            return _to_rgb(self.resize_array(arr, box))
        img = Image.fromarray(arr[..., 0] if grey else arr)
        return _to_rgb(np.asarray(self._pillow_resize(img, box, s)))

    def transform(self, results: dict) -> dict:
        """Read ``results['img_path']`` and write the crop to ``results['img']``."""
        path = results['img_path']
        data = fileio.get(path, backend_args=self.backend_args)
        try:
            out, header = None, self.jpeg_header(data)
            if header is not None:
                height, width, grey = header
                box = self.crop_params(height, width)
                out = self.decode_jpeg(data, height, width, grey, box)
            if out is None:
                with Image.open(io.BytesIO(data)) as img:
                    width, height = img.size
                    out = self.crop_image(img, box if header is not None else None)
        except (OSError, SyntaxError, ValueError) as e:
            raise OSError(f'{type(self).__name__} cannot read {path}: '
                          f'{type(e).__name__}: {e}') from e
        results['img'] = out[..., ::-1] if self.channel_order == 'bgr' else out
        results['img_shape'] = (self.out_h, self.out_w)
        results['ori_shape'] = (height, width)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale}, '
                f'crop_ratio_range={self.crop_ratio_range}, '
                f'aspect_ratio_range={self.aspect_ratio_range}, '
                f'interpolation={self.interpolation}, exact={self.exact}, '
                f'fast_idct={self.fast_idct}, decode_backend={self.decode_backend}, '
                f'resize_backend={self.resize_backend}, '
                f'channel_order={self.channel_order})')


@TRANSFORMS.register_module()
class ClampedRandomResizedCrop(RandomResizedCrop):
    """The random resized crop of MAE's linear probe (``util/crop.py`` of MAE and SdAE).

    One draw of an area fraction (uniform in ``crop_ratio_range``) and an aspect ratio
    (log-uniform in ``aspect_ratio_range``); the box's width and height are clamped to the
    image instead of redrawn, then placed uniformly (`MAE
    <https://arxiv.org/abs/2111.06377>`_, following BYOL's TF crop). The arguments are
    mmpretrain's ``RandomResizedCrop``'s; ``max_attempts`` is ignored.
    """

    def __init__(self, *args, **kwargs) -> None:
        if kwargs.get('max_attempts', 1) != 1:
            warnings.warn('ClampedRandomResizedCrop draws once; max_attempts is ignored')
        super().__init__(*args, **kwargs)

    @cache_randomness
    def rand_crop_params(self, img: np.ndarray) -> Tuple[int, int, int, int]:
        """``(offset_h, offset_w, crop_h, crop_w)``: one draw, clamped to the image."""
        height, width = img.shape[:2]
        target_area = height * width * np.random.uniform(*self.crop_ratio_range)
        log_ratio = (math.log(self.aspect_ratio_range[0]),
                     math.log(self.aspect_ratio_range[1]))
        aspect_ratio = math.exp(np.random.uniform(*log_ratio))
        crop_w = min(int(round(math.sqrt(target_area * aspect_ratio))), width)
        crop_h = min(int(round(math.sqrt(target_area / aspect_ratio))), height)
        offset_h = np.random.randint(0, height - crop_h + 1)
        offset_w = np.random.randint(0, width - crop_w + 1)
        return offset_h, offset_w, crop_h, crop_w
