"""Report the versions of the stack and check that they work together.

Usage::

    python tools/analysis_tools/check_env.py

Prints the versions of python, torch, torchvision, mmcv (and whether its compiled ops
import and run), mmengine, mmpretrain, mmseg, mmdet, timm, numpy, opencv and pycocotools,
then checks at run time what the pins of ``requirements/`` promise:

- numpy < 2 (mmcv 2.1, mmdet 3.3 and mmseg 1.2 predate numpy 2);
- opencv imports beside that numpy and is >= 3 (mmcv's requirement; opencv-python wheels
  from 4.12 on are built for numpy 2 and do not import with numpy 1.x);
- mmcv is within the range that mmdet 3.3 and mmseg 1.2 accept (>= 2.0.0rc4, < 2.2.0),
  ``mmcv.ops`` imports and ``mmcv.ops.nms`` gives the right answer on a fixed input;
- mmpretrain, mmdet and mmseg import, which runs their own mmcv / mmengine version checks.

It exits with status 1 and one line per problem, naming the package and its version, when
any check fails. Nothing heavy is imported before :func:`collect_env` is called.
"""
import importlib
import platform
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

#: Range of mmcv versions that both mmdet 3.3 and mmseg 1.2 accept: [min, max).
MMCV_MIN, MMCV_MAX = '2.0.0rc4', '2.2.0'
#: numpy versions accepted by mmcv 2.1 / mmdet 3.3 / mmseg 1.2: below this.
NUMPY_MAX = '2.0.0'
#: mmcv's own requirement on opencv.
OPENCV_MIN = '3.0.0'

# (key in the report, module to import, distributions that may provide it)
_PACKAGES = (
    ('numpy', 'numpy', ('numpy', )),
    ('opencv', 'cv2', ('opencv-python', 'opencv-python-headless', 'opencv-contrib-python',
                       'opencv-contrib-python-headless')),
    ('torch', 'torch', ('torch', )),
    ('torchvision', 'torchvision', ('torchvision', )),
    ('mmengine', 'mmengine', ('mmengine', )),
    ('mmcv', 'mmcv', ('mmcv', 'mmcv-full', 'mmcv-lite')),
    ('mmpretrain', 'mmpretrain', ('mmpretrain', )),
    ('mmseg', 'mmseg', ('mmsegmentation', )),
    ('mmdet', 'mmdet', ('mmdet', )),
    ('timm', 'timm', ('timm', )),
    ('pycocotools', 'pycocotools', ('pycocotools', )),
)

#: Keys of the dict returned by :func:`collect_env`.
ENV_KEYS = ('python', 'platform') + tuple(p[0] for p in _PACKAGES) + (
    'opencv_dist', 'cuda_available', 'mmcv_ops', 'import_errors')


def _dist_version(dists) -> Tuple[Optional[str], Optional[str]]:
    """(distribution name, version) of the first installed distribution, or (None, None)."""
    from importlib import metadata
    for name in dists:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None, None


def _version_tuple(version: str):
    """A comparable version, pre-releases before their release (``2.0.0rc4 < 2.0.0``)."""
    try:
        from packaging.version import Version
        return Version(version)
    except Exception:  # packaging missing or a malformed version: compare the digits
        import re
        return tuple(int(x) for x in re.findall(r'\d+', version.split('+')[0])[:3])


def _check_mmcv_ops() -> Optional[str]:
    """None when ``mmcv.ops`` imports and ``nms`` keeps the right boxes, else the error."""
    try:
        import torch
        from mmcv.ops import nms
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [20., 20., 30., 30.]])
        scores = torch.tensor([0.9, 0.8, 0.7])
        _, keep = nms(boxes, scores, iou_threshold=0.5)
        if keep.tolist() != [0, 2]:
            return f'mmcv.ops.nms kept {keep.tolist()} instead of [0, 2]'
    except Exception as e:  # ImportError of the compiled extension, undefined symbols, ...
        return f'{type(e).__name__}: {e}'
    return None


def collect_env() -> Dict[str, object]:
    """Versions of the stack, imported in dependency order.

    Returns:
        OrderedDict: ``python``, ``platform``, one entry per package (``numpy``, ``opencv``,
        ``torch``, ``torchvision``, ``mmengine``, ``mmcv``, ``mmpretrain``, ``mmseg``,
        ``mmdet``, ``timm``, ``pycocotools``: the imported module's version, or the
        installed distribution's version when the import fails, or None when it is not
        installed), ``opencv_dist`` (the distribution that provides ``cv2``),
        ``cuda_available`` (bool), ``mmcv_ops`` (True when ``mmcv.ops`` imports and ``nms``
        runs correctly) and ``import_errors`` (package key -> error message).
    """
    env: Dict[str, object] = OrderedDict()
    env['python'] = sys.version.split()[0]
    env['platform'] = platform.platform()
    errors: Dict[str, str] = OrderedDict()
    for key, module_name, dists in _PACKAGES:
        dist_name, dist_version = _dist_version(dists)
        if key == 'opencv':
            env['opencv_dist'] = dist_name
        try:
            module = importlib.import_module(module_name)
            env[key] = str(getattr(module, '__version__', dist_version))
        except Exception as e:  # AssertionError of the version checks, ImportError, ...
            env[key] = dist_version
            errors[key] = f'{type(e).__name__}: {e}'.strip()
    env.setdefault('opencv_dist', None)
    try:
        import torch
        env['cuda_available'] = bool(torch.cuda.is_available())
    except Exception:
        env['cuda_available'] = False
    if 'mmcv' in errors or env['mmcv'] is None:
        env['mmcv_ops'] = False
    else:
        ops_error = _check_mmcv_ops()
        env['mmcv_ops'] = ops_error is None
        if ops_error is not None:
            errors['mmcv.ops'] = ops_error
    env['import_errors'] = errors
    return env


def check_env(env: Optional[dict] = None) -> List[str]:
    """Problems of an environment, one clear line each (empty when all is well).

    Args:
        env (dict, optional): The output of :func:`collect_env`; collected when None.

    Returns:
        list[str]: Messages naming the package, its version and what is required.
    """
    env = collect_env() if env is None else env
    errors = env.get('import_errors', {})
    problems = []

    numpy = env.get('numpy')
    if numpy is None:
        problems.append('numpy is not installed: pip install "numpy>=1.24,<2"')
    elif _version_tuple(numpy) >= _version_tuple(NUMPY_MAX):
        problems.append(f'numpy=={numpy} is installed, but mmcv 2.1 / mmdet 3.3 / mmseg 1.2 '
                        f'need numpy<2: pip install "numpy>=1.24,<2"')

    opencv, dist = env.get('opencv'), env.get('opencv_dist') or 'opencv-python'
    if opencv is None:
        problems.append('opencv is not installed: pip install "opencv-python<4.12"')
    elif 'opencv' in errors:
        problems.append(f'{dist}=={opencv} does not import with numpy=={numpy} '
                        f'({errors["opencv"]}); opencv-python>=4.12 is built for numpy 2: '
                        f'pip install "opencv-python==4.11.0.86"')
    elif _version_tuple(opencv) < _version_tuple(OPENCV_MIN):
        problems.append(f'{dist}=={opencv} is older than mmcv needs (>={OPENCV_MIN})')

    mmcv = env.get('mmcv')
    if mmcv is None:
        problems.append('mmcv is not installed: build it with tools/build_mmcv.sh '
                        f'(mmdet 3.3 and mmseg 1.2 need mmcv>={MMCV_MIN},<{MMCV_MAX})')
    elif 'mmcv' in errors:
        problems.append(f'mmcv=={mmcv} does not import: {errors["mmcv"]}')
    else:
        if not (_version_tuple(MMCV_MIN) <= _version_tuple(mmcv) < _version_tuple(MMCV_MAX)):
            problems.append(f'mmcv=={mmcv} is installed, but mmdet 3.3 and mmseg 1.2 need '
                            f'mmcv>={MMCV_MIN},<{MMCV_MAX} (use mmcv==2.1.0)')
        if not env.get('mmcv_ops'):
            problems.append(f'mmcv=={mmcv} has no working compiled ops '
                            f'({errors.get("mmcv.ops", "mmcv.ops unavailable")}): '
                            'rebuild it with tools/build_mmcv.sh (MMCV_WITH_OPS=1)')

    for key in ('torch', 'torchvision', 'mmengine', 'mmpretrain', 'mmseg', 'mmdet', 'timm',
                'pycocotools'):
        if env.get(key) is None and key not in errors:
            problems.append(f'{key} is not installed (see requirements/)')
        elif key in errors and not (key in ('mmpretrain', 'mmseg', 'mmdet')
                                    and 'mmcv' in errors):
            problems.append(f'{key}=={env.get(key)} does not import: {errors[key]}')
    return problems


def main() -> int:
    """Print the environment and its problems; return the exit status (0 or 1)."""
    env = collect_env()
    width = max(len(k) for k in env)
    for key, value in env.items():
        if key == 'import_errors':
            continue
        if key == 'mmcv_ops':
            value = 'compiled, nms runs' if value else 'NOT available'
        print(f'{key:<{width}} : {value}')
    problems = check_env(env)
    if problems:
        print('\nEnvironment check FAILED:', file=sys.stderr)
        for line in problems:
            print(f'  - {line}', file=sys.stderr)
        return 1
    print('\nEnvironment check passed.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
