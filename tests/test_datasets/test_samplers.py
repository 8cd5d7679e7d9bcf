"""SeededSampler and SeedPerSample: per-sample seeds, and the pretraining pipeline's law."""
import pickle
import random

import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import DefaultSampler
from PIL import Image
from scipy import stats

from sdae_mm.datasets import SampleIndex, SeededSampler, sample_seeds
from sdae_mm.datasets.transforms import SeedPerSample


class _Range:

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def test_order_is_default_samplers_and_seeds_depend_on_seed_epoch_index():
    data = _Range(50)
    ours, ref = SeededSampler(data, seed=3), DefaultSampler(data, seed=3)
    for epoch in (0, 1):
        ours.set_epoch(epoch)
        ref.set_epoch(epoch)
        idx = list(ours)
        assert [int(i) for i in idx] == list(ref)
        assert all(isinstance(i, SampleIndex) for i in idx)
        assert [i.seed for i in idx] == sample_seeds(3, epoch, list(ref)).tolist()
    a, b = sample_seeds(3, 0, range(50)), sample_seeds(3, 1, range(50))
    assert len(set(a.tolist())) == 50 and not set(a.tolist()) & set(b.tolist())
    assert (sample_seeds(4, 0, range(50)) != a).all()


def test_sample_index_is_an_int_that_pickles_with_its_seed():
    i = SampleIndex(7, 2**63 + 5)
    j = pickle.loads(pickle.dumps(i))
    assert j == 7 and j.seed == 2**63 + 5 and str(j) == '7'
    assert [0, 1, 2, 3, 4, 5, 6, 7][j] == 7 and np.arange(10)[j] == 7


def test_seed_per_sample_makes_the_draws_independent_of_the_prior_state():
    seed_tf = SeedPerSample()
    out = []
    for prior in (0, 1):
        np.random.seed(prior)
        random.seed(prior)
        seed_tf(dict(sample_idx=SampleIndex(4, 123)))
        out.append((np.random.random_sample(3).tolist(), random.random()))
    assert out[0] == out[1]
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    with pytest.warns(UserWarning, match='no seed'):
        seed_tf(dict(sample_idx=4))
    assert (np.random.get_state()[1] == state).all()


@pytest.fixture(scope='module')
def photo_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp('photos')
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate([(500, 375), (375, 500), (640, 480), (300, 300)]):
        img = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        path = str(root / f'{i}.jpg')
        Image.fromarray(img).resize(size, Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def test_pretraining_pipeline_law(repo_root, photo_folder):
    """dtype/shape, seeded reproducibility, flip rate and mask law of the pretraining
    pipeline (SeedPerSample, DecodeRandomResizedCrop, RandomFlip, mask, PackInputs)."""
    cfg = Config.fromfile(f'{repo_root}/configs/_base_/datasets/imagenet_bs96_sdae.py')
    mim = Config.fromfile(f'{repo_root}/configs/_base_/datasets/imagenet_bs128_mim.py')
    # MAE, dBOT and RC-MAE share all but the mask generator
    assert mim.train_dataloader.dataset.pipeline[:3] == cfg.train_dataloader.dataset.pipeline[:3]
    assert mim.train_dataloader.sampler == cfg.train_dataloader.sampler
    num_masked = 147
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [t['type'] for t in pipeline[:3]] == ['SeedPerSample', 'DecodeRandomResizedCrop',
                                                 'RandomFlip']
    assert cfg.train_dataloader.sampler.type == 'SeededSampler'
    crop_only, flipped, full = Compose(pipeline[:2]), Compose(pipeline[:3]), Compose(pipeline)
    seeds = sample_seeds(0, 0, range(300)).tolist()
    flips, masks = 0, []
    for k, seed in enumerate(seeds):
        res = dict(img_path=photo_folder[k % 4], sample_idx=SampleIndex(k, seed))
        a = crop_only(dict(res))['img']
        b = flipped(dict(res))['img']
        if not np.array_equal(a, b):
            np.testing.assert_array_equal(b, a[:, ::-1])
            flips += 1
        if k < 80:
            out = full(dict(res))
            assert out['inputs'].dtype.is_floating_point is False
            assert tuple(out['inputs'].shape) == (3, 224, 224)
            ids = np.asarray(out['data_samples'].ids_shuffle)
            assert sorted(ids.tolist()) == list(range(196))
            masks.append(ids[196 - num_masked:])
            again = full(dict(res))  # the same seed: the same crop and mask
            assert (again['inputs'] == out['inputs']).all()
            assert (again['data_samples'].ids_shuffle == out['data_samples'].ids_shuffle).all()
    assert stats.binomtest(flips, 300, 0.5).pvalue > 1e-3
    # every patch is masked with probability 147 / 196
    counts = np.bincount(np.concatenate(masks), minlength=196)
    expected = len(masks) * num_masked / 196
    assert stats.chisquare(counts, np.full(196, expected)).pvalue > 1e-4
