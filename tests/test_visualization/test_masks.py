import numpy as np
import pytest

from sdae_mm.visualization import render_mask_views


def test_panels_show_visible_patches_and_folds():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    ids = rng.permutation(16)
    out = render_mask_views(img, ids, patch_size=8, num_visible=4, num_folds=3, fold_size=4,
                            gap=2)
    assert out.shape == (32, 5 * 32 + 4 * 2, 3)
    panels = [out[:, i * 34:i * 34 + 32] for i in range(5)]
    np.testing.assert_array_equal(panels[0], img)

    def patch(panel, idx):
        r, c = divmod(int(idx), 4)
        return panel[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8]

    for idx in ids[:4]:  # visible patches are shown as they are
        np.testing.assert_array_equal(patch(panels[1], idx), patch(img, idx))
    for idx in ids[4:]:  # masked ones are dimmed
        assert not np.array_equal(patch(panels[1], idx), patch(img, idx))
    for f in range(3):
        fold = ids[4 + 4 * f:8 + 4 * f]
        others = [i for i in ids if i not in fold]
        dim = (img.astype(np.float32) * 0.25 + 40).astype(np.uint8)
        for i in others:
            np.testing.assert_array_equal(patch(panels[2 + f], i), patch(dim, i))
        for i in fold:
            assert not np.array_equal(patch(panels[2 + f], i), patch(dim, i))


def test_rejects_wrong_shapes():
    img = np.zeros((30, 30, 3), np.uint8)
    with pytest.raises(ValueError, match='multiple of patch_size 8'):
        render_mask_views(img, np.arange(16), 8, 4)
    with pytest.raises(ValueError, match='expected \\(16,\\)'):
        render_mask_views(np.zeros((32, 32, 3), np.uint8), np.arange(15), 8, 4)
