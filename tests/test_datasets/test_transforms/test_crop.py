"""DecodeRandomResizedCrop and ClampedRandomResizedCrop: crop law, pixels, dtype, shape."""
import math

import numpy as np
import pytest
import torch
from mmpretrain.datasets.transforms import RandomResizedCrop
from PIL import Image
from scipy import stats
from torchvision import transforms as T

from sdae_mm.datasets.transforms import ClampedRandomResizedCrop, DecodeRandomResizedCrop
from sdae_mm.datasets.transforms import crop as crop_module
from sdae_mm.datasets.transforms.crop import draft_scale, random_resized_crop_params

needs_simplejpeg = pytest.mark.skipif(crop_module.simplejpeg is None,
                                      reason='simplejpeg is not installed')


def _photo(width, height, seed=0):
    """Smooth colour gradients plus grain: JPEG-compressible, not flat."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([x / width * 200, y / height * 200, (x + y) / (width + height) * 255], -1)
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


@pytest.fixture(scope='module')
def jpegs(tmp_path_factory):
    root = tmp_path_factory.mktemp('jpegs')
    paths = {}
    for name, size in dict(small=(120, 90), photo=(500, 375), large=(1600, 1200)).items():
        paths[name] = str(root / f'{name}.jpg')
        _photo(*size).save(paths[name], quality=90)
    paths['grey'] = str(root / 'grey.jpg')
    _photo(1000, 800).convert('L').save(paths['grey'], quality=90)
    paths['rgba'] = str(root / 'rgba.png')
    _photo(300, 200).convert('RGBA').save(paths['rgba'])
    paths['cmyk'] = str(root / 'cmyk.jpg')
    _photo(600, 450).convert('CMYK').save(paths['cmyk'], quality=90)
    with open(paths['photo'], 'rb') as f:
        data = f.read()
    for name, bad in dict(truncated=data[:len(data) // 2], garbage=b'\xff\xd8 not a JPEG',
                          # stray bytes before a marker, as in a few ImageNet files:
                          # libjpeg warns, Pillow decodes
                          extraneous=data.replace(b'\xff\xda', b'\x12\x34\xff\xda', 1)).items():
        paths[name] = str(root / f'{name}.JPEG')
        with open(paths[name], 'wb') as f:
            f.write(bad)
    return paths


def _psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float))**2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def _crop(transform, path, seed):
    np.random.seed(seed)
    return transform(dict(img_path=path))['img']


@pytest.mark.parametrize('size', [(375, 500), (500, 375), (64, 64), (1000, 20), (20, 1000)])
def test_crop_params_equal_mmpretrains_for_the_same_numpy_state(size):
    ref = RandomResizedCrop(scale=224, crop_ratio_range=(0.2, 1.0))
    img = np.zeros(size + (3, ), np.uint8)
    for seed in range(200):
        np.random.seed(seed)
        ours = random_resized_crop_params(*size, scale=(0.2, 1.0))
        np.random.seed(seed)
        assert ours == tuple(ref.rand_crop_params(img)), (size, seed)


def test_crop_params_follow_torchvisions_law():
    torch.manual_seed(0)
    np.random.seed(0)
    img = torch.zeros(3, 375, 500)
    n = 3000
    ref = np.array([T.RandomResizedCrop.get_params(img, (0.2, 1.0), (3 / 4, 4 / 3))
                    for _ in range(n)], dtype=float)
    ours = np.array([random_resized_crop_params(375, 500, (0.2, 1.0)) for _ in range(n)],
                    dtype=float)
    # (top, left, h, w): area fraction, aspect ratio and the box's centre
    for name, f in dict(area=lambda a: a[:, 2] * a[:, 3] / (375 * 500),
                        log_aspect=lambda a: np.log(a[:, 3] / a[:, 2]),
                        centre_y=lambda a: a[:, 0] + a[:, 2] / 2,
                        centre_x=lambda a: a[:, 1] + a[:, 3] / 2).items():
        assert stats.ks_2samp(f(ours), f(ref)).pvalue > 1e-3, name
    assert (ours[:, 0] + ours[:, 2] <= 375).all() and (ours[:, 1] + ours[:, 3] <= 500).all()


def test_exact_mode_gives_the_official_pixels(jpegs):
    """exact=True == torchvision's RandomResizedCrop on the PIL image (same box)."""
    for name in ('photo', 'large', 'grey', 'rgba'):
        crop = DecodeRandomResizedCrop(224, crop_ratio_range=(0.2, 1.0), exact=True,
                                       channel_order='rgb')
        for seed in range(4):
            np.random.seed(seed)
            out = crop(dict(img_path=jpegs[name]))
            np.random.seed(seed)
            ref_img = Image.open(jpegs[name]).convert('RGB')
            top, left, h, w = random_resized_crop_params(ref_img.height, ref_img.width,
                                                         (0.2, 1.0))
            ref = T.functional.resized_crop(ref_img, top, left, h, w, [224, 224],
                                            T.InterpolationMode.BICUBIC)
            np.testing.assert_array_equal(out['img'], np.asarray(ref), err_msg=name)
            assert out['ori_shape'] == (ref_img.height, ref_img.width)


def test_output_dtype_shape_and_channel_order(jpegs):
    np.random.seed(3)
    bgr = DecodeRandomResizedCrop(224)(dict(img_path=jpegs['photo']))
    np.random.seed(3)
    rgb = DecodeRandomResizedCrop(224, channel_order='rgb')(dict(img_path=jpegs['photo']))
    for out in (bgr, rgb):
        assert out['img'].dtype == np.uint8 and out['img'].shape == (224, 224, 3)
        assert out['img_shape'] == (224, 224)
    np.testing.assert_array_equal(bgr['img'], rgb['img'][..., ::-1])
    rect = DecodeRandomResizedCrop((96, 64))(dict(img_path=jpegs['small']))  # (w, h)
    assert rect['img'].shape == (64, 96, 3)


def test_draft_only_for_large_crops_and_close_to_exact(jpegs):
    assert draft_scale(500, 600, 224, 224) == 2 and draft_scale(447, 900, 224, 224) == 1
    assert draft_scale(1800, 1800, 224, 224) == 8 and draft_scale(900, 1000, 224, 224) == 4
    fast = DecodeRandomResizedCrop(224, crop_ratio_range=(0.9, 1.0), fast_idct=False)
    exact = DecodeRandomResizedCrop(224, crop_ratio_range=(0.9, 1.0), exact=True)
    psnrs = [_psnr(_crop(fast, jpegs['large'], seed), _crop(exact, jpegs['large'], seed))
             for seed in range(4)]
    # a 1600 x 1200 crop of >= 90 % is decoded at 1/4 or 1/2 scale
    assert 30 < min(psnrs) and max(psnrs) < math.inf, psnrs
    # a crop smaller than twice the output: full-size decode, the exact pixels with
    # Pillow's resampling, nearly them with torch's
    for decode in ('auto', 'pillow'):
        pil = DecodeRandomResizedCrop(224, crop_ratio_range=(0.9, 1.0), fast_idct=False,
                                      decode_backend=decode, resize_backend='pillow')
        np.testing.assert_array_equal(_crop(pil, jpegs['photo'], 0),
                                      _crop(exact, jpegs['photo'], 0))
    assert _psnr(_crop(fast, jpegs['photo'], 0), _crop(exact, jpegs['photo'], 0)) > 50


def test_fast_idct_changes_pixels_little(jpegs):
    fast = DecodeRandomResizedCrop(224, crop_ratio_range=(0.9, 1.0))
    exact = DecodeRandomResizedCrop(224, crop_ratio_range=(0.9, 1.0), exact=True)
    assert fast.fast_idct and not exact.fast_idct
    np.random.seed(0)
    a = fast(dict(img_path=jpegs['photo']))['img'].astype(float)
    np.random.seed(0)
    b = exact(dict(img_path=jpegs['photo']))['img'].astype(float)
    mse = np.mean((a - b)**2)
    assert 0 < mse and 10 * math.log10(255**2 / mse) > 30


def test_grey_is_resized_before_replication(jpegs):
    out = DecodeRandomResizedCrop(224, exact=True)(dict(img_path=jpegs['grey']))['img']
    assert out.shape == (224, 224, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


BACKENDS = [('pillow', 'pillow'), ('pillow', 'torch'),
            pytest.param('simplejpeg', 'pillow', marks=needs_simplejpeg),
            pytest.param('simplejpeg', 'torch', marks=needs_simplejpeg)]


@pytest.mark.parametrize('decode,resize', BACKENDS)
def test_backends_draw_the_same_boxes_and_stay_close_to_exact(jpegs, decode, resize):
    """Every backend: the same numpy draws, the same box, pixels within a PSNR bound."""
    kwargs = dict(scale=224, crop_ratio_range=(0.2, 1.0))
    fast = DecodeRandomResizedCrop(**kwargs, decode_backend=decode, resize_backend=resize)
    exact = DecodeRandomResizedCrop(**kwargs, exact=True)
    ref = DecodeRandomResizedCrop(**kwargs, decode_backend='pillow', resize_backend='pillow')
    assert fast.use_simplejpeg == (decode == 'simplejpeg')
    for name in ('small', 'photo', 'large', 'grey', 'rgba', 'cmyk', 'extraneous'):
        for seed in range(3):
            a = _crop(fast, jpegs[name], seed)
            state = np.random.get_state()[1][np.random.get_state()[2] - 1]
            b = _crop(exact, jpegs[name], seed)
            # the same number of draws: the same position in numpy's stream afterwards
            assert state == np.random.get_state()[1][np.random.get_state()[2] - 1], name
            assert a.dtype == np.uint8 and a.shape == (224, 224, 3), name
            assert _psnr(a, b) > 33, (name, seed, _psnr(a, b))
            if resize == 'pillow':
                # the decoders are the same libjpeg-turbo: identical pixels
                np.testing.assert_array_equal(a, _crop(ref, jpegs[name], seed), err_msg=name)
            if name == 'grey':
                assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()


@needs_simplejpeg
def test_simplejpeg_decodes_only_the_jpegs_it_reads_like_pillow(jpegs, monkeypatch):
    crop = DecodeRandomResizedCrop(224)
    for name, expected in dict(photo=(375, 500, False), grey=(800, 1000, True),
                               truncated=(375, 500, False), cmyk=None, rgba=None,
                               garbage=None, extraneous=None).items():
        with open(jpegs[name], 'rb') as f:
            assert crop.jpeg_header(f.read()) == expected, name
    # damage that libjpeg-turbo reports in the header or the data: Pillow's decode (the
    # official loader's), with the box already drawn from the header if it was read
    calls = []
    monkeypatch.setattr(DecodeRandomResizedCrop, 'crop_image',
                        lambda self, img, box=None: calls.append(box) or np.zeros((1, 1, 3)))
    for name in ('photo', 'extraneous', 'truncated'):
        np.random.seed(0)
        crop(dict(img_path=jpegs[name]))
    np.random.seed(0)
    assert calls == [None, random_resized_crop_params(375, 500, (0.08, 1.0))]


@pytest.mark.parametrize('decode', ['pillow', pytest.param('auto', marks=needs_simplejpeg)])
@pytest.mark.parametrize('name', ['truncated', 'garbage'])
def test_unreadable_files_name_the_file(jpegs, decode, name):
    crop = DecodeRandomResizedCrop(224, decode_backend=decode)
    with pytest.raises(OSError, match=f'cannot read {jpegs[name]}'):
        crop(dict(img_path=jpegs[name]))


def test_backend_choice_without_simplejpeg(jpegs, monkeypatch):
    monkeypatch.setattr(crop_module, 'simplejpeg', None)
    with pytest.raises(ImportError, match='simplejpeg'):
        DecodeRandomResizedCrop(224, decode_backend='simplejpeg')
    auto = DecodeRandomResizedCrop(224)
    assert not auto.use_simplejpeg
    np.testing.assert_array_equal(
        _crop(auto, jpegs['photo'], 1),
        _crop(DecodeRandomResizedCrop(224, decode_backend='pillow'), jpegs['photo'], 1))
    exact = DecodeRandomResizedCrop(224, exact=True, decode_backend='simplejpeg'
                                    if crop_module.simplejpeg else 'auto')
    assert not exact.use_simplejpeg and not exact.use_torch_resize


def test_torch_resize_matches_pillows_filter():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    crop = DecodeRandomResizedCrop((224, 160))  # (w, h)
    # downscale, upscale, and down in one axis / up in the other
    for box in ((10, 20, 280, 350), (50, 60, 100, 120), (0, 0, 120, 390)):
        top, left, h, w = box
        ref = np.asarray(Image.fromarray(arr[top:top + h, left:left + w]).resize(
            (224, 160), Image.BICUBIC))
        out = crop.resize_array(arr, box)
        assert out.shape == (160, 224, 3) and out.dtype == np.uint8
        assert np.abs(out.astype(int) - ref).max() <= 3 and _psnr(out, ref) > 50, box
    grey = crop.resize_array(arr[..., :1].copy(), (0, 0, 300, 400))
    assert grey.shape == (160, 224, 1)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        DecodeRandomResizedCrop(224, crop_ratio_range=(0.5, 1.5))
    with pytest.raises(ValueError):
        DecodeRandomResizedCrop(224, interpolation='cubic')
    with pytest.raises(ValueError):
        DecodeRandomResizedCrop(224, channel_order='yuv')
    with pytest.raises(ValueError):
        DecodeRandomResizedCrop(224, decode_backend='turbojpeg')
    with pytest.raises(ValueError):
        DecodeRandomResizedCrop(224, resize_backend='cv2')


def _official_clamped(height, width, scale, ratio, gen):
    """MAE util/crop.py's law, written from its description, drawing from torch."""
    area = height * width * torch.empty(1).uniform_(*scale, generator=gen).item()
    logr = torch.empty(1).uniform_(math.log(ratio[0]), math.log(ratio[1]),
                                   generator=gen).item()
    w = min(int(round(math.sqrt(area * math.exp(logr)))), width)
    h = min(int(round(math.sqrt(area / math.exp(logr)))), height)
    top = torch.randint(0, height - h + 1, (1, ), generator=gen).item()
    left = torch.randint(0, width - w + 1, (1, ), generator=gen).item()
    return top, left, h, w


def test_clamped_crop_follows_maes_law():
    crop = ClampedRandomResizedCrop(scale=224, crop_ratio_range=(0.08, 1.0))
    gen = torch.Generator().manual_seed(0)
    np.random.seed(0)
    for height, width in ((375, 500), (1000, 200)):
        img = np.zeros((height, width, 3), np.uint8)
        ours = np.array([crop.rand_crop_params(img) for _ in range(3000)], dtype=float)
        ref = np.array([_official_clamped(height, width, (0.08, 1.0), (3 / 4, 4 / 3), gen)
                        for _ in range(3000)], dtype=float)
        for col, name in enumerate(('top', 'left', 'h', 'w')):
            assert stats.ks_2samp(ours[:, col], ref[:, col]).pvalue > 1e-3, (height, name)
        assert (ours[:, 2] <= height).all() and (ours[:, 3] <= width).all()
    # clamping, not redrawing: on a 1000 x 200 image many boxes take the full width,
    # which torchvision's law (boxes that fit, else a centre crop) gives far less often
    full_width = (ours[:, 3] == 200).mean()
    torch.manual_seed(0)
    tv = np.array([T.RandomResizedCrop.get_params(torch.zeros(3, 1000, 200), (0.08, 1.0),
                                                  (3 / 4, 4 / 3)) for _ in range(3000)])
    assert full_width > 0.3 and full_width > 3 * (tv[:, 3] == 200).mean()


def test_clamped_crop_transform_output():
    img = np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8)
    out = ClampedRandomResizedCrop(scale=64, backend='pillow',
                                   interpolation='bicubic')(dict(img=img))
    assert out['img'].shape == (64, 64, 3) and out['img'].dtype == np.uint8
