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
    from sdae_mm.datasets.demo_data import build_demo_data
    out = tmp_path_factory.mktemp('demo_data')
    build_demo_data(str(out))
    return str(out)
