"""The Python tools answer ``--help`` before importing torch and the OpenMMLab stack."""
import subprocess
import sys

import pytest

from tests.helpers.tools import load_tool

TOOLS = ['tools/train.py', 'tools/test.py', 'tools/convert_checkpoint.py',
         'tools/visualize_masks.py']

PROBE = """
import runpy, sys
from tests.helpers.tools import load_tool
sys.argv = [{tool!r}, '--help']
try:
    runpy.run_path({tool!r}, run_name='__main__')
except SystemExit as e:
    assert e.code == 0, e.code
heavy = sorted(m for m in ('torch', 'sdae_mm', 'mmpretrain', 'mmseg', 'mmdet')
               if m in sys.modules)
print('HEAVY', heavy)
"""


@pytest.mark.parametrize('tool', TOOLS)
def test_help_without_heavy_imports(repo_root, tool):
    proc = subprocess.run([sys.executable, '-c', PROBE.format(tool=tool)], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'usage:' in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == 'HEAVY []'


def test_convert_checkpoint_choices_match_the_library(repo_root):
    from sdae_mm import checkpoint
    tool = load_tool('tools/convert_checkpoint.py')
    assert tool.TARGETS == checkpoint.TARGETS
    assert tool.ALGORITHMS == checkpoint.ALGORITHMS
    assert tool.BRANCHES == checkpoint.BRANCHES
    assert tool.FORMATS == checkpoint.FORMATS
