"""Pictures of masks and teacher folds."""
from typing import List, Optional, Sequence

import numpy as np

FOLD_COLOURS = np.array([[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48],
                         [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60]],
                        dtype=np.float32)


def _patch_mask(ids: np.ndarray, grid: int, patch_size: int) -> np.ndarray:
    """Boolean pixel mask of the patches ``ids`` on a ``grid x grid`` patch grid."""
    cells = np.zeros(grid * grid, dtype=bool)
    cells[ids] = True
    return np.kron(cells.reshape(grid, grid), np.ones((patch_size, patch_size), bool))


def render_mask_views(img: np.ndarray,
                      ids_shuffle: np.ndarray,
                      patch_size: int,
                      num_visible: int,
                      num_folds: int = 0,
                      fold_size: Optional[int] = None,
                      gap: int = 2) -> np.ndarray:
    """A strip of panels: the image, what the student sees, then each teacher fold.

    Args:
        img (np.ndarray): RGB image ``(H, W, 3)`` uint8, square, a multiple of the patch.
        ids_shuffle (np.ndarray): ``(L,)`` permutation, visible patches first.
        patch_size (int): Patch size in pixels.
        num_visible (int): Number of visible patches.
        num_folds (int): Number of teacher folds (0: no fold panels).
        fold_size (int, optional): Patches per fold; defaults to the masked patches split
            evenly.
        gap (int): White pixels between panels.

    Returns:
        np.ndarray: ``(H, W * panels + gaps, 3)`` uint8 RGB.
    """
    H, W = img.shape[:2]
    if H != W or H % patch_size:
        raise ValueError(f'image {img.shape[:2]} must be square and a multiple of '
                         f'patch_size {patch_size}')
    grid = H // patch_size
    ids_shuffle = np.asarray(ids_shuffle)
    if ids_shuffle.shape != (grid * grid, ):
        raise ValueError(f'ids_shuffle has shape {ids_shuffle.shape}, expected ({grid * grid},)')
    base = img.astype(np.float32)
    dim = base * 0.25 + 40
    panels = [img]
    visible = _patch_mask(ids_shuffle[:num_visible], grid, patch_size)
    panels.append(np.where(visible[..., None], base, dim).astype(np.uint8))
    if num_folds:
        masked = ids_shuffle[num_visible:]
        fold_size = fold_size or len(masked) // num_folds
        for f in range(num_folds):
            sel = _patch_mask(masked[f * fold_size:(f + 1) * fold_size], grid, patch_size)
            tint = 0.55 * base + 0.45 * FOLD_COLOURS[f % len(FOLD_COLOURS)]
            panels.append(np.where(sel[..., None], tint, dim).astype(np.uint8))
    sep = np.full((H, gap, 3), 255, np.uint8)
    out = [panels[0]]
    for p in panels[1:]:
        out += [sep, p]
    return np.concatenate(out, axis=1)


def mask_view_titles(num_patches: int,
                     num_visible: int,
                     num_folds: int = 0,
                     fold_size: Optional[int] = None,
                     image_title: str = 'image') -> List[str]:
    """Titles of the panels of :func:`render_mask_views`, in the same order.

    Args:
        num_patches (int): Patches per image (L).
        num_visible (int): Visible patches (the student's input).
        num_folds (int): Teacher folds (0: none).
        fold_size (int, optional): Patches per fold; defaults to the masked patches split
            evenly.
        image_title (str): Title of the first panel (e.g. the image's class).

    Returns:
        list[str]: ``2 + num_folds`` titles.
    """
    titles = [image_title, f'student sees {num_visible}/{num_patches}']
    if num_folds:
        fold_size = fold_size or (num_patches - num_visible) // num_folds
        titles += [f'teacher fold {f + 1}: {fold_size}' for f in range(num_folds)]
    return titles


def add_panel_titles(strip: np.ndarray,
                     titles: Sequence[str],
                     panel_width: int,
                     gap: int,
                     height: int = 20) -> np.ndarray:
    """Put a white band with one black title centred over each panel above a strip.

    Args:
        strip (np.ndarray): ``(H, W, 3)`` uint8 strip of panels ``panel_width`` wide with
            ``gap`` pixels between them (as :func:`render_mask_views` draws it, possibly
            upscaled together with ``panel_width`` and ``gap``).
        titles (Sequence[str]): One title per panel.
        panel_width (int): Width of a panel in pixels.
        gap (int): Pixels between panels.
        height (int): Height of the title band.

    Returns:
        np.ndarray: ``(height + H, W, 3)`` uint8.
    """
    from PIL import Image, ImageDraw, ImageFont
    num_panels = (strip.shape[1] + gap) // (panel_width + gap)
    if len(titles) != num_panels:
        raise ValueError(f'{len(titles)} titles for {num_panels} panels')
    band = Image.new('RGB', (strip.shape[1], height), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    try:  # a scalable font where Pillow has FreeType (Pillow >= 10.1)
        font = ImageFont.load_default(size=max(8, int(height * 0.7)))
    except (TypeError, ImportError, OSError):
        font = ImageFont.load_default()
    for i, title in enumerate(titles):
        left, top, right, bottom = draw.textbbox((0, 0), title, font=font)
        x = i * (panel_width + gap) + max(0, (panel_width - (right - left)) // 2)
        draw.text((x - left, (height - (bottom - top)) // 2 - top), title, fill=(0, 0, 0),
                  font=font)
    return np.concatenate([np.asarray(band), strip], axis=0)
