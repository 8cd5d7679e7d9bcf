"""``import sdae_mm`` registers the pretraining modules only, within the import budget."""
import json
import os
import subprocess
import sys

CODE = '''
import json, resource, sys, time
import mmpretrain.models
rss0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
import sdae_mm
from mmpretrain.registry import HOOKS, MODELS, TRANSFORMS
print(json.dumps(dict(
    seconds=time.perf_counter() - t0,
    rss_mb=(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024,
    downstream=sorted(m for m in sys.modules if m.startswith('sdae_mm.downstream')),
    mmseg='mmseg' in sys.modules,
    registered=[MODELS.get('SdAE') is not None, TRANSFORMS.get('MultiFoldMaskGenerator')
                is not None, HOOKS.get('TeacherEMAHook') is not None])))
'''


def test_import_registers_pretraining_modules_only(repo_root):
    env = dict(os.environ, PYTHONPATH=repo_root, OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, '-c', CODE], env=env, cwd=repo_root, check=True,
                         capture_output=True, text=True, timeout=300).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result['registered'] == [True, True, True]
    assert result['downstream'] == [] and result['mmseg'] is False
    # docs/speed.md: at most 10 MB of RSS above `import mmpretrain.models` (about 1.5 MB)
    assert result['rss_mb'] < 10, result
