"""--cfg-options: a misspelt top-level key is an error, a new key is added on purpose."""
import pytest
from mmengine.config import Config

from sdae_mm.utils.cfg_options import merge_cfg_options


def _cfg():
    return Config(dict(optim_wrapper=dict(optimizer=dict(lr=1e-3)), train_cfg=dict(
        max_epochs=2), model=dict(type='SdAE')))


def test_misspelt_top_level_key_suggests_close_matches():
    cfg = _cfg()
    with pytest.raises(ValueError, match=r"'optim_wraper.optimizer.lr'.*did you mean "
                       r"'optim_wrapper'.*\+optim_wraper.optimizer.lr=") as err:
        merge_cfg_options(cfg, {'optim_wraper.optimizer.lr': 0.1, 'train_cfg.max_epochs': 5})
    assert 'train_cfg' not in str(err.value)
    assert cfg.optim_wrapper.optimizer.lr == 1e-3 and cfg.train_cfg.max_epochs == 2
    with pytest.raises(ValueError, match='no similar key'):
        merge_cfg_options(cfg, {'zzz': 1})


def test_known_and_explicitly_new_keys_merge():
    cfg = merge_cfg_options(_cfg(), {'optim_wrapper.optimizer.lr': 0.1,
                                     'model.backbone.arch': 'b', '+randomness.seed': 3})
    assert cfg.optim_wrapper.optimizer.lr == 0.1 and cfg.model.backbone.arch == 'b'
    assert cfg.randomness == dict(seed=3) and '+randomness' not in cfg
    assert merge_cfg_options(cfg, None) is cfg


def test_train_and_test_tools_refuse_unknown_keys(repo_root):
    from tools import train
    config = f'{repo_root}/configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py'
    args = train.parse_args([config, '--cfg-options', 'optim_wraper.optimizer.lr=0.1'])
    with pytest.raises(ValueError, match="did you mean 'optim_wrapper'"):
        train.merge_args(Config.fromfile(config), args)
    args = train.parse_args([config, '--cfg-options', 'optim_wrapper.optimizer.lr=0.1'])
    assert train.merge_args(Config.fromfile(config), args).optim_wrapper.optimizer.lr == 0.1
