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


def test_titles_name_every_panel():
    from sdae_mm.visualization import mask_view_titles
    assert mask_view_titles(64, 16, 3, 16, image_title='class 3') == [
        'class 3', 'student sees 16/64', 'teacher fold 1: 16', 'teacher fold 2: 16',
        'teacher fold 3: 16']
    assert mask_view_titles(64, 16) == ['image', 'student sees 16/64']


def test_title_band_over_each_panel():
    from sdae_mm.visualization import add_panel_titles
    strip = np.full((40, 3 * 40 + 2 * 4, 3), 128, np.uint8)
    out = add_panel_titles(strip, ['a', 'bb', 'ccc'], panel_width=40, gap=4, height=20)
    assert out.shape == (60, strip.shape[1], 3)
    np.testing.assert_array_equal(out[20:], strip)  # the pictures are untouched
    band = out[:20].min(axis=2)
    for i in range(3):  # dark text pixels above each panel
        assert (band[:, i * 44:i * 44 + 40] < 100).any(), i
    with pytest.raises(ValueError, match='2 titles for 3 panels'):
        add_panel_titles(strip, ['a', 'b'], panel_width=40, gap=4)


def test_visualize_masks_picks_several_classes():
    import os.path as osp
    import sys
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                                'tools'))
    from visualize_masks import pick_indices
    paths = [f'root/{c}/{i}.png' for c in range(10) for i in range(5)]
    picked = pick_indices(paths, 4)
    assert [paths[i].split('/')[1] for i in picked] == ['0', '3', '6', '9']
    picked = pick_indices(paths, 12)
    assert len(set(picked)) == 12 and len({paths[i].split('/')[1] for i in picked}) == 10
    assert pick_indices(['a.png'] * 9, 3) == [0, 3, 6]  # no class folders: spread out
