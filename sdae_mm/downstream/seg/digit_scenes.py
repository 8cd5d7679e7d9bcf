"""The demo "digit scenes" as an mmseg dataset (ADE20K-style semantic maps)."""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class DigitScenesDataset(BaseSegDataset):
    """Semantic segmentation on the embedded demo scenes (2-4 digits per 128x128 canvas).

    Layout (built by ``tools/prepare_demo_data.py``; see
    ``tools/dataset_converters/demo_data.py``)::

        data/demo/scenes/img_dir/{train,val}/<id>.png   RGB images
        data/demo/scenes/ann_dir/{train,val}/<id>.png   uint8 maps, 0 = background,
                                                        digit d = d + 1

    Eleven classes: ``background`` and the digits ``'0'`` .. ``'9'``. Unlike ADE20K, label
    0 is a real class, so ``reduce_zero_label`` is False.

    Args:
        img_suffix (str): Image file suffix. Defaults to '.png'.
        seg_map_suffix (str): Semantic map file suffix. Defaults to '.png'.
        reduce_zero_label (bool): Defaults to False (background is class 0).
        **kwargs: Other arguments of :class:`mmseg.datasets.BaseSegDataset`.
    """

    METAINFO = dict(
        classes=('background', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'),
        palette=[[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                 [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
                 [210, 245, 60], [250, 190, 212]])

    def __init__(self, img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False,
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
