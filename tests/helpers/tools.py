"""Load a script of ``tools/`` as a fresh module, the way its command line runs it."""
import importlib.util
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool(path: str):
    """Execute ``path`` (relative to the repository root, e.g. ``'tools/train.py'``) as a
    new module and return it; each call gives a new module object."""
    spec = importlib.util.spec_from_file_location('tool_' + re.sub(r'\W', '_', path),
                                                  osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
