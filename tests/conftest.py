"""Shared test settings: small thread count and the repository root on sys.path."""
import os
import os.path as osp
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

import sdae_mm  # noqa: E402,F401


@pytest.fixture(scope='session')
def repo_root():
    return ROOT


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """The embedded demo data, built once per session."""
    from tools.dataset_converters.demo_data import build_demo_data
    out = tmp_path_factory.mktemp('demo_data')
    build_demo_data(str(out))
    return str(out)


@pytest.fixture(autouse=True)
def default_scope(request):
    """Every test starts in its library's default scope: ``DEFAULT_SCOPE`` of its module,
    else mmpretrain.

    mmengine keeps the latest default scope process-wide: a test that builds an mmseg or
    mmdet Runner would otherwise make later ``MODELS.build`` calls look in that library's
    registry. Scopes a test creates are dropped when it ends.
    """
    from mmengine.registry import DefaultScope
    scope = getattr(request.module, 'DEFAULT_SCOPE', 'mmpretrain')
    with DefaultScope.overwrite_default_scope(scope):
        yield
