"""tools/setup_env.sh --check: a drifted environment is detected, not only a new stamp.

The checks run on a view of this test's own venv (its interpreter and a copy of its
site-packages made of symbolic links), so nothing is installed or changed.
"""
import os
import os.path as osp
import subprocess
import sys
import sysconfig

import pytest


def _stamp(repo_root):
    return subprocess.run(
        'cat requirements/*.txt setup.py tools/setup_env.sh tools/build_mmcv.sh | sha256sum '
        '| cut -c1-16', shell=True, cwd=repo_root, capture_output=True, text=True,
        check=True).stdout.strip()


def _venv_view(tmp_path, repo_root, replace=None):
    """A venv directory whose site-packages links every entry of the running one, with
    ``replace`` ({entry name: (new name, METADATA text)}) swapped for a fake distribution."""
    if sys.prefix == sys.base_prefix or not osp.isfile(osp.join(sys.prefix, 'pyvenv.cfg')):
        pytest.skip('needs to run inside a venv')
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    (venv / 'bin' / 'python').symlink_to(osp.realpath(sys.executable))
    (venv / 'pyvenv.cfg').write_text(open(osp.join(sys.prefix, 'pyvenv.cfg')).read())
    purelib = sysconfig.get_paths()['purelib']
    site = venv / osp.relpath(purelib, sys.prefix)
    site.mkdir(parents=True)
    replace = replace or {}
    for name in os.listdir(purelib):
        if name in replace:
            new_name, metadata = replace[name]
            (site / new_name).mkdir()
            (site / new_name / 'METADATA').write_text(metadata)
        else:
            (site / name).symlink_to(osp.join(purelib, name))
    (venv / '.sdae-mm-stamp').write_text(_stamp(repo_root) + '\n')
    return venv


def _check(repo_root, venv):
    return subprocess.run(['bash', 'tools/setup_env.sh', '--check'], cwd=repo_root,
                          env=dict(os.environ, SDAE_MM_VENV=str(venv)), capture_output=True,
                          text=True, timeout=120)


def test_check_passes_on_the_installed_environment(repo_root, tmp_path):
    proc = _check(repo_root, _venv_view(tmp_path, repo_root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'is up to date' in proc.stdout


def test_check_reports_a_drifted_numpy(repo_root, tmp_path):
    """What installing openmim without constraints did: numpy 2 in the venv."""
    from importlib import metadata
    numpy_info = f'numpy-{metadata.version("numpy")}.dist-info'
    venv = _venv_view(tmp_path, repo_root, replace={numpy_info: (
        'numpy-2.1.0.dist-info', 'Metadata-Version: 2.1\nName: numpy\nVersion: 2.1.0\n')})
    proc = _check(repo_root, venv)
    assert proc.returncode == 1
    assert 'numpy==2.1.0 is installed' in proc.stdout and '<2' in proc.stdout


def test_check_reports_a_missing_interpreter_and_stamp(repo_root, tmp_path):
    proc = _check(repo_root, tmp_path / 'nothing')
    assert proc.returncode == 1 and 'no interpreter' in proc.stdout
    venv = _venv_view(tmp_path, repo_root)
    (venv / '.sdae-mm-stamp').write_text('0123456789abcdef\n')
    proc = _check(repo_root, venv)
    assert proc.returncode == 1 and 'stamp differs' in proc.stdout
