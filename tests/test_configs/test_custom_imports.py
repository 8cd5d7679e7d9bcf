"""Every transfer config imports the sdae_mm downstream modules its scope needs.

``import sdae_mm`` registers the pretraining modules only; an mmseg or mmdet config that
forgot ``sdae_mm.downstream.seg`` / ``.det`` in ``custom_imports`` would fail to build its
backbone outside the tests (which import those modules themselves).
"""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

NEEDS = {'mmseg': 'sdae_mm.downstream.seg', 'mmdet': 'sdae_mm.downstream.det'}


def _configs(root):
    paths = glob.glob(osp.join(root, 'configs', '**', '*.py'), recursive=True)
    return sorted(p for p in paths if '_base_' not in p.split(osp.sep))


def test_transfer_configs_import_their_downstream_modules(repo_root):
    checked = 0
    for path in _configs(repo_root):
        cfg = Config.fromfile(path)
        scope = cfg.get('default_scope')
        if scope not in NEEDS:
            continue
        imports = cfg.get('custom_imports', {}).get('imports', [])
        assert NEEDS[scope] in imports, (
            f'{osp.relpath(path, repo_root)} (default_scope={scope!r}) imports {imports}; '
            f'add {NEEDS[scope]!r} to custom_imports')
        checked += 1
    assert checked >= 10  # the segmentation, detection and demo transfer configs


@pytest.mark.parametrize('scope', sorted(NEEDS))
def test_downstream_modules_register_their_scope(scope):
    import importlib

    from mmengine.registry import DefaultScope
    module = importlib.import_module(NEEDS[scope])
    assert module is not None
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        names = set(registry.module_dict)
    assert any(name in names for name in ('SdMIMSegViT', 'PlainViT', 'ViTDet'))
