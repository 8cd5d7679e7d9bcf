import numpy as np
import pytest

from sdae_mm.datasets.transforms import MultiFoldMaskGenerator, RandomPatchMaskGenerator


def _img(size=64):
    return dict(img=np.zeros((size, size, 3), np.uint8))


def test_random_mask_counts_and_convention():
    gen = RandomPatchMaskGenerator(input_size=64, patch_size=8, mask_ratio=0.75)
    out = gen(_img())
    ids, mask = out['ids_shuffle'], out['mask']
    assert ids.dtype == np.int64 and ids.shape == (64, )
    assert sorted(ids.tolist()) == list(range(64))  # a permutation
    assert mask.shape == (64, ) and mask.sum() == 48
    # visible first, masked after
    assert (mask[ids[:16]] == 0).all() and (mask[ids[16:]] == 1).all()


def test_official_visible_count_rounding():
    # int(L * (1 - r)) as in the official code: 196 * 0.25 = 49
    assert RandomPatchMaskGenerator(224, 16, 0.75).num_visible == 49
    assert RandomPatchMaskGenerator(224, 16, 0.6).num_visible == int(196 * (1 - 0.6))


def test_multifold_folds_disjoint_and_cover_teacher_tokens():
    gen = MultiFoldMaskGenerator(input_size=224, patch_size=16, mask_ratio=0.75,
                                 num_teacher_tokens=147, num_folds=3)
    out = gen(_img(224))
    folds = gen.fold_ids(out['ids_shuffle'])
    assert folds.shape == (3, 49)
    flat = folds.reshape(-1)
    assert len(set(flat.tolist())) == 147  # disjoint
    assert set(flat.tolist()) == set(out['ids_shuffle'][49:49 + 147].tolist())
    assert (out['mask'][flat] == 1).all()  # only masked patches
    # consecutive slices of the masked part
    np.testing.assert_array_equal(folds[1], out['ids_shuffle'][49 + 49:49 + 98])


def test_multifold_remainder_dropped_like_official():
    with pytest.warns(UserWarning, match='not a multiple'):
        gen = MultiFoldMaskGenerator(64, 8, 0.75, num_teacher_tokens=47, num_folds=3)
    assert gen.num_teacher_tokens == 45 and gen.fold_size == 15


def test_determinism_under_seed():
    from mmengine.runner import set_random_seed
    gen = MultiFoldMaskGenerator(64, 8, 0.75, num_teacher_tokens=48, num_folds=3)
    set_random_seed(3)
    a = [gen(_img())['ids_shuffle'] for _ in range(3)]
    set_random_seed(3)
    b = [gen(_img())['ids_shuffle'] for _ in range(3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize('ratio', [0., 1., -0.1, 1.5])
def test_rejects_mask_ratio_outside_open_interval(ratio):
    with pytest.raises(ValueError, match='mask_ratio'):
        RandomPatchMaskGenerator(64, 8, ratio)


def test_rejects_more_teacher_tokens_than_masked():
    with pytest.raises(ValueError, match='num_teacher_tokens=49 exceeds the 48 masked'):
        MultiFoldMaskGenerator(64, 8, 0.75, num_teacher_tokens=49, num_folds=1)


def test_rejects_size_not_multiple_of_patch():
    with pytest.raises(ValueError, match='not a multiple of patch_size 16'):
        RandomPatchMaskGenerator(input_size=100, patch_size=16)


def test_rejects_image_of_wrong_size():
    gen = RandomPatchMaskGenerator(64, 8)
    with pytest.raises(ValueError, match=r'has size \(32, 32\) but input_size is \(64, 64\)'):
        gen(_img(32))
