"""tools/visualize_masks.py on the demo data: titled panels, one image per class picked."""
import os.path as osp
import sys

import numpy as np
from PIL import Image

CFG = 'configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py'


def test_titled_pictures_of_several_classes(repo_root, demo_data, tmp_path):
    sys.path.insert(0, osp.join(repo_root, 'tools'))
    import visualize_masks
    written = visualize_masks.main([
        osp.join(repo_root, CFG), '--out-dir', str(tmp_path), '--num-images', '3', '--scale',
        '2', '--cfg-options', f'train_dataloader.dataset.data_root={demo_data}/cls'])
    assert len(written) == 3
    for path in written:
        img = np.asarray(Image.open(path))
        # title band (20 px) over 64-px panels scaled x2: image, student, 3 teacher folds
        assert img.shape == (20 + 128, 5 * 128 + 4 * 4, 3)
        band = img[:20].min(axis=2)
        for i in range(5):
            assert (band[:, i * 132:i * 132 + 128] < 100).any(), (path, i)  # a title
    # the classes are the digit folders, spread over 0-9
    assert [osp.basename(p) for p in written] == [
        'mask_000_0.png', 'mask_001_4.png', 'mask_002_9.png']
