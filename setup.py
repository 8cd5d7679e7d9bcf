"""Install sdae-mm: ``pip install -e .`` (tools/setup_env.sh does it for you)."""
import os.path as osp

from setuptools import find_packages, setup


def get_version():
    """Read ``__version__`` from sdae_mm/version.py without importing it."""
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'sdae_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(fname):
    """Requirement lines of ``requirements/<fname>``, comments stripped."""
    path = osp.join(osp.dirname(__file__), 'requirements', fname)
    reqs = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                reqs.append(line)
    return reqs


setup(
    name='sdae_mm',
    version=get_version(),
    description='Self-distilled masked image modeling (SdAE, dBOT, RC-MAE) '
    'on the OpenMMLab stack, with downstream transfer',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tools.*', 'tests', 'tests.*', 'docs')),
    python_requires='>=3.9',
    install_requires=parse_requirements('torch.txt') + parse_requirements('mmcv.txt') +
    parse_requirements('runtime.txt'),
    extras_require={'tests': parse_requirements('tests.txt')},
    license='Apache License 2.0',
    zip_safe=False,
)
