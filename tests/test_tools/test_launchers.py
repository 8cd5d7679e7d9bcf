"""tools/{dist,slurm}_{train,test}.sh: arguments as mmpretrain's launchers take them.

``srun`` and the Python interpreter are replaced by a stub that records its arguments, so
these tests check what each launcher would start, without a cluster or GPUs.
"""
import os
import os.path as osp
import shutil
import stat
import subprocess

import pytest

STUB = """#!/usr/bin/env bash
printf '%s\\n' "$(basename "$0")" "$@" > "$RECORD"
"""


@pytest.fixture
def stub(tmp_path):
    """A directory with ``srun`` and ``python-stub`` that write their argv to a file."""
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    for name in ('srun', 'python-stub'):
        path = bindir / name
        path.write_text(STUB)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    record = tmp_path / 'argv.txt'

    def run(script, *args, **env):
        full_env = dict(os.environ, PATH=f'{bindir}{os.pathsep}{os.environ["PATH"]}',
                        RECORD=str(record), PYTHON=str(bindir / 'python-stub'))
        full_env.update(env)
        for key in ('NNODES', 'NODE_RANK', 'MASTER_ADDR', 'PORT', 'GPUS', 'GPUS_PER_NODE'):
            if key not in env:
                full_env.pop(key, None)
        if record.exists():
            record.unlink()
        proc = subprocess.run(['bash', f'tools/{script}', *args], env=full_env,
                              capture_output=True, text=True, timeout=60)
        argv = record.read_text().splitlines() if record.exists() else None
        return proc, argv
    return run


@pytest.fixture(autouse=True)
def _cwd(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)


def test_dist_train_single_node(stub, repo_root):
    proc, argv = stub('dist_train.sh', 'configs/x.py', '8', '--resume')
    assert proc.returncode == 0, proc.stderr
    assert argv[:2] == ['python-stub', '-m'] and argv[2] == 'torch.distributed.run'
    assert '--nnodes=1' in argv and '--node_rank=0' in argv and '--nproc_per_node=8' in argv
    i = argv.index(osp.join(repo_root, 'tools/train.py'))
    assert argv[i + 1:] == ['configs/x.py', '--launcher', 'pytorch', '--resume']


def test_dist_train_two_nodes_of_eight(stub):
    """A 16-GPU recipe as 2 nodes x 8: the second node's command."""
    proc, argv = stub('dist_train.sh', 'configs/x.py', '8', NNODES='2', NODE_RANK='1',
                      MASTER_ADDR='10.0.0.1', PORT='29600')
    assert proc.returncode == 0, proc.stderr
    for arg in ('--nnodes=2', '--node_rank=1', '--master_addr=10.0.0.1', '--master_port=29600',
                '--nproc_per_node=8'):
        assert arg in argv


def test_dist_test_passes_checkpoint_and_options(stub, repo_root):
    proc, argv = stub('dist_test.sh', 'configs/x.py', 'ckpt.pth', '2', '--json', 'm.json')
    assert proc.returncode == 0, proc.stderr
    i = argv.index(osp.join(repo_root, 'tools/test.py'))
    assert argv[i + 1:] == ['configs/x.py', 'ckpt.pth', '--launcher', 'pytorch', '--json',
                            'm.json']
    assert '--nproc_per_node=2' in argv


@pytest.mark.parametrize('script,args', [
    ('dist_train.sh', ['configs/x.py']),
    ('dist_train.sh', ['configs/x.py', '--resume']),  # GPUS forgotten
    ('dist_test.sh', ['configs/x.py', 'ckpt.pth']),
    ('slurm_train.sh', ['partition', 'job']),
    ('slurm_test.sh', ['partition', 'job', 'configs/x.py']),
])
def test_missing_arguments_print_usage(stub, script, args):
    proc, argv = stub(script, *args)
    assert proc.returncode == 2
    assert argv is None  # nothing was started
    assert f'tools/{script}' in proc.stderr and 'error: expected' in proc.stderr


@pytest.mark.parametrize('script', ['dist_train.sh', 'dist_test.sh', 'slurm_train.sh',
                                    'slurm_test.sh'])
@pytest.mark.parametrize('flag', ['--help', '-h'])
def test_help(stub, script, flag):
    proc, argv = stub(script, flag)
    assert proc.returncode == 0 and argv is None
    assert proc.stdout.lstrip().split('\n')[0]  # a first line
    assert f'tools/{script} ' in proc.stdout and '#' not in proc.stdout.split('\n')[0]


def _train_args(argv, repo_root):
    i = argv.index(osp.join(repo_root, 'tools/train.py'))
    return argv[i + 1:]


def test_slurm_train_flag_is_never_the_work_dir(stub, repo_root):
    """``PARTITION JOB CONFIG --resume`` resumes in the default work dir."""
    proc, argv = stub('slurm_train.sh', 'gpu', 'sdae', 'configs/x.py', '--resume')
    assert proc.returncode == 0, proc.stderr
    assert argv[0] == 'srun'
    assert _train_args(argv, repo_root) == ['configs/x.py', '--launcher=slurm', '--resume']


def test_slurm_train_work_dir_and_resume_path(stub, repo_root):
    proc, argv = stub('slurm_train.sh', 'gpu', 'sdae', 'configs/x.py', 'work_dirs/x',
                      '--resume', 'work_dirs/x/epoch_10.pth')
    assert proc.returncode == 0, proc.stderr
    assert _train_args(argv, repo_root) == [
        'configs/x.py', '--work-dir', 'work_dirs/x', '--launcher=slurm', '--resume',
        'work_dirs/x/epoch_10.pth']


def test_slurm_train_sixteen_gpus(stub):
    proc, argv = stub('slurm_train.sh', 'gpu', 'det', 'configs/x.py', GPUS='16',
                      SRUN_ARGS='--time=1:00:00 --qos=high')
    assert proc.returncode == 0, proc.stderr
    for arg in ('-p', 'gpu', '--job-name=det', '--gres=gpu:8', '--ntasks=16',
                '--ntasks-per-node=8', '--kill-on-bad-exit=1', '--time=1:00:00', '--qos=high'):
        assert arg in argv
    assert argv[argv.index('--qos=high') + 1].endswith('python-stub')


def test_slurm_fewer_gpus_than_a_node(stub):
    proc, argv = stub('slurm_test.sh', 'gpu', 't', 'configs/x.py', 'ckpt.pth', GPUS='2')
    assert proc.returncode == 0, proc.stderr
    assert '--ntasks=2' in argv and '--ntasks-per-node=2' in argv and '--gres=gpu:2' in argv


def test_slurm_test_arguments(stub, repo_root):
    proc, argv = stub('slurm_test.sh', 'gpu', 't', 'configs/x.py', 'ckpt.pth', '--show-dir',
                      'vis')
    assert proc.returncode == 0, proc.stderr
    i = argv.index(osp.join(repo_root, 'tools/test.py'))
    assert argv[i + 1:] == ['configs/x.py', 'ckpt.pth', '--launcher=slurm', '--show-dir', 'vis']


def test_launchers_find_the_venv(stub, repo_root, tmp_path):
    """Without $PYTHON the repository's .venv/bin/python is used (as by srun here)."""
    proc, argv = stub('slurm_train.sh', 'gpu', 'j', 'configs/x.py', PYTHON='')
    assert proc.returncode == 0, proc.stderr
    python = argv[argv.index('--kill-on-bad-exit=1') + 1]
    if osp.exists(osp.join(repo_root, '.venv/bin/python')):
        assert python == osp.join(repo_root, '.venv/bin/python')
    else:
        assert python == 'python3'


def test_slurm_without_srun_says_so(tmp_path):
    """No Slurm here: a clear message instead of 'srun: command not found'."""
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    for tool in ('dirname', 'basename'):
        (bindir / tool).symlink_to(shutil.which(tool))
    proc = subprocess.run([shutil.which('bash'), 'tools/slurm_train.sh', 'gpu', 'j',
                           'configs/x.py'],
                          env=dict(os.environ, PATH=str(bindir)), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 127
    assert 'srun not found' in proc.stderr and 'tools/dist_train.sh' in proc.stderr
