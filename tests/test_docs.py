"""The commands of README.md, docs/*.md, configs/**/README.md and the config headers run as
written: every file, config and tool they name exists, every Python tool accepts the
arguments shown (its own argument parser), the launchers get the positional arguments they
need, configs load and the keys ``--cfg-options`` sets exist, and a checkpoint
``work_dirs/<config>/epoch_N.pth`` is one that config writes. Nothing is trained.
"""
import glob
import importlib.util
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
from functools import lru_cache

import pytest

from tests.helpers.tools import load_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PY = '.venv/bin/python'
REPO_DIRS = ('configs/', 'tools/', 'docs/', 'sdae_mm/', 'requirements/', 'tests/')
# programs a documented command may run besides the tools and launchers
OTHER_PROGRAMS = {'cd', 'git', 'ls', 'cat', 'mkdir', 'du', 'tail', 'grep', '.venv/bin/mim'}
FORBIDDEN = {'python', 'python3', 'pip', 'pip3', 'torchrun', 'mim'}
LAUNCHERS = {  # positional arguments before the tool's own arguments, the tool
    'tools/dist_train.sh': (['config', 'gpus'], 'tools/train.py'),
    'tools/dist_test.sh': (['config', 'checkpoint', 'gpus'], 'tools/test.py'),
    'tools/slurm_train.sh': (['partition', 'job', 'config', 'work_dir?'], 'tools/train.py'),
    'tools/slurm_test.sh': (['partition', 'job', 'config', 'checkpoint'], 'tools/test.py'),
}


def doc_files():
    files = ['README.md', 'CHANGELOG.md'] + sorted(glob.glob('docs/*.md', root_dir=ROOT))
    files += sorted(glob.glob('configs/**/README.md', root_dir=ROOT, recursive=True))
    return [f for f in files if osp.isfile(osp.join(ROOT, f))]


def config_files():
    return sorted(f for f in glob.glob('configs/**/*.py', root_dir=ROOT, recursive=True))


# ------------------------------------------------------------------ extraction
def _open_quote(command):
    try:
        shlex.split(command, comments=True)
    except ValueError:
        return True
    return False


def _join_continuations(lines):
    """Shell lines to commands: a trailing backslash or an open quote continues one."""
    out, cur = [], ''
    for line in lines:
        line = line.strip() if cur else line
        if line.rstrip().endswith('\\'):
            cur += line.rstrip()[:-1].rstrip() + ' '
        elif _open_quote(cur + line):
            cur += line + '\n'
        else:
            out.append(cur + line)
            cur = ''
    if cur:
        out.append(cur)
    return out


def markdown_commands(text):
    """Commands of the ```bash / ```shell / ```sh blocks, one list per block."""
    blocks = re.findall(r'^```(?:bash|shell|sh)\n(.*?)^```', text, re.M | re.S)
    return [[c for c in _join_continuations(b.split('\n')) if c.strip()] for b in blocks]


def header_commands(text):
    """Commands in a config's leading comment block: lines such as
    ``#   .venv/bin/python tools/train.py CONFIG`` or ``# Usage: bash tools/...``."""
    lines = []
    for line in text.split('\n'):
        if not line.startswith('#'):
            break
        lines.append(line[1:])
    starts = (f'{PY} ', 'bash tools/', 'tools/', 'GPUS=', 'NNODES=', 'python ', 'make ')
    cmds, cur = [], None
    for line in lines:
        body = re.sub(r'^\s*(Usage(\s*\([^)]*\))?:)?\s*', '', line)
        if cur is not None:
            cur += body
        elif body.startswith(starts):
            cur = body
        else:
            continue
        if cur.rstrip().endswith('\\'):
            cur = cur.rstrip()[:-1].rstrip() + ' '
        else:
            cmds.append(cur)
            cur = None
    if cur is not None:
        cmds.append(cur)
    return cmds


# ------------------------------------------------------------------ checks
@lru_cache(maxsize=None)
def load_config(path):
    """The config as plain dicts and lists."""
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, path)).to_dict()


@lru_cache(maxsize=None)
def tool_module(path):
    return load_tool(path)


def _has_key(cfg, dotted):
    node = cfg
    for part in dotted.split('.'):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.lstrip('-').isdigit() \
                and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _demo_work_dirs():
    dirs = {}
    for path in config_files():
        m = re.search(r"^work_dir = '([^']+)'", open(osp.join(ROOT, path)).read(), re.M)
        if m:
            dirs[m.group(1).rstrip('/')] = path
    return dirs


def check_checkpoint_path(token, problems):
    """``work_dirs/<name>/{epoch,iter}_N.pth`` must be what the config <name> (or the
    config whose ``work_dir`` is that folder) writes at the end of its schedule."""
    m = re.match(r'^work_dirs/(.+)/(epoch|iter)_(\d+)\.pth$', token)
    if not m:
        return
    folder, unit, n = m.group(1), m.group(2), int(m.group(3))
    config = _demo_work_dirs().get(f'work_dirs/{folder}')
    if config is None:
        found = glob.glob(f'configs/**/{folder}.py', root_dir=ROOT, recursive=True)
        if not found:
            return problems.append(f'{token}: no config named {folder}.py writes it')
        config = found[0]
    cfg = load_config(config)
    last = (cfg.get('train_cfg') or {}).get('max_epochs' if unit == 'epoch' else 'max_iters')
    interval = ((cfg.get('default_hooks') or {}).get('checkpoint') or {}).get('interval', 1)
    if last is None or not (n == last or (n < last and n % interval == 0)):
        problems.append(f'{token}: {config} writes no such checkpoint (every {interval} '
                        f'{unit}s up to {last})')


def check_paths(tokens, problems):
    for token in tokens:
        for part in [token] + token.split('=')[1:]:
            part = part.strip('\'"')
            if '$' in part or '<' in part:
                continue
            if part.startswith(REPO_DIRS) and not osp.exists(osp.join(ROOT, part)):
                problems.append(f'{part} does not exist')
            check_checkpoint_path(part, problems)


def check_cfg_options(argv, problems):
    """Every ``--cfg-options`` key's parent exists in the command's config."""
    configs = [a for a in argv if a.startswith('configs/') and a.endswith('.py')]
    if '--cfg-options' not in argv or not configs or \
            not osp.isfile(osp.join(ROOT, configs[0])):
        return
    cfg = load_config(configs[0])
    i = argv.index('--cfg-options') + 1
    while i < len(argv) and not argv[i].startswith('--'):
        key = argv[i].split('=', 1)[0]
        parent = key.rsplit('.', 1)[0] if '.' in key else None
        if parent is not None and not _has_key(cfg, parent):
            problems.append(f'--cfg-options {key}: {configs[0]} has no {parent}')
        i += 1


def check_tool_args(tool, argv, problems):
    """The tool's own parser accepts ``argv`` (``--help`` in a subprocess for a tool
    without ``parse_args(argv)``)."""
    if not osp.isfile(osp.join(ROOT, tool)):
        return problems.append(f'{tool} does not exist')
    module = tool_module(tool)
    parse_args = getattr(module, 'parse_args', None)
    if parse_args is None:
        proc = subprocess.run([sys.executable, tool, '--help'], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        if proc.returncode != 0:
            problems.append(f'{tool} --help failed: {proc.stderr[-300:]}')
        return
    try:
        parse_args(list(argv))
    except SystemExit as e:
        if e.code:
            problems.append(f'{tool} rejects {shlex.join(argv)}')
    for config in argv:
        if config.startswith('configs/') and config.endswith('.py') and \
                osp.isfile(osp.join(ROOT, config)):
            load_config(config)


def check_launcher(script, args, problems):
    spec, tool = LAUNCHERS[script]
    if args[:1] in (['-h'], ['--help']):
        return
    positional = []
    for name in spec:
        if name.endswith('?'):
            if args and not args[0].startswith('-'):
                positional.append(args.pop(0))
            continue
        if not args:
            return problems.append(f'{script}: missing {name}')
        value = args.pop(0)
        if name == 'gpus' and not value.isdigit():
            problems.append(f'{script}: GPUS must be a number, got {value}')
        positional.append(value)
    tool_argv = [p for n, p in zip(spec, positional) if n in ('config', 'checkpoint')]
    check_tool_args(tool, tool_argv + args, problems)


def check_command(command, variables=None):
    """Problems of one shell command (an empty list when it runs as written)."""
    problems = []
    variables = {} if variables is None else variables
    m = re.match(r'^\s*([A-Za-z_]\w*)=\$\(', command)
    if m:  # NAME=$(command): its value is known only when run
        variables.pop(m.group(1), None)
        return problems
    for name, value in variables.items():
        command = re.sub(r'\$\{?%s\}?(?![A-Za-z0-9_])' % name, value, command)
    try:
        argv = shlex.split(command, comments=True)
    except ValueError as e:
        return [f'cannot parse: {e}']
    if not argv:
        return problems
    if len(argv) == 1 and re.match(r'^[A-Za-z_]\w*=', argv[0]):  # NAME=value
        name, value = argv[0].split('=', 1)
        if '$(' not in value:
            variables[name] = value
        check_paths([value], problems)
        return problems
    while argv and re.match(r'^[A-Za-z_]\w*=', argv[0]):  # environment of one command
        argv.pop(0)
    if argv[:1] == ['time']:
        argv.pop(0)
    check_paths(argv, problems)
    check_cfg_options(argv, problems)
    prog, args = argv[0], argv[1:]
    if prog in FORBIDDEN:
        problems.append(f'bare {prog}: use {PY} (the README\'s one way to call Python)')
    elif prog == 'make':
        targets = re.findall(r'^([\w-]+):', open(osp.join(ROOT, 'Makefile')).read(), re.M)
        problems += [f'make {t}: no such target' for t in args if t not in targets]
    elif prog == 'bash' or prog.startswith('tools/'):
        script = args.pop(0) if prog == 'bash' else prog
        if not osp.isfile(osp.join(ROOT, script)):
            problems.append(f'{script} does not exist')
        elif script in LAUNCHERS:
            check_launcher(script, args, problems)
        elif script == 'tools/setup_env.sh' and set(args) - {'--check', '--help'}:
            problems.append(f'tools/setup_env.sh takes only --check, got {args}')
    elif prog == PY:
        if args[:2] == ['-X', 'importtime']:  # interpreter option, then the command
            args = args[2:]
        if args[:1] == ['-c']:
            try:
                compile(args[1], '<doc>', 'exec')
            except SyntaxError as e:
                problems.append(f'{PY} -c: {e}')
        elif args[:1] == ['-m']:
            if args[1].startswith('sdae_mm') and importlib.util.find_spec(args[1]) is None:
                problems.append(f'no module {args[1]}')
        elif args and args[0].startswith('tools/'):
            check_tool_args(args[0], args[1:], problems)
        elif not args or '$' not in args[0]:
            problems.append(f'{PY} runs no tool here: {command}')
    elif prog not in OTHER_PROGRAMS:
        problems.append(f'unknown program {prog}')
    return problems


def check_block(commands):
    variables, problems = {}, []
    for command in commands:
        found = dict.fromkeys(check_command(command, variables))  # once each, in order
        problems += [f'{command.strip()}\n    -> {p}' for p in found]
    return problems


def check_links(path, text):
    problems = []
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'^(https?:|mailto:|#)', target):
            continue
        file = osp.normpath(osp.join(ROOT, osp.dirname(path), target.split('#')[0]))
        if not osp.exists(file):
            problems.append(f'link {target} -> {osp.relpath(file, ROOT)} does not exist')
    for span in re.findall(r'`([^`\n]+)`', re.sub(r'```.*?```', '', text, flags=re.S)):
        if re.match(r'^(python3?|torchrun) ', span):
            problems.append(f'`{span}`: use {PY}')
    return problems


# ------------------------------------------------------------------ tests
@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize('path', doc_files())
def test_documented_commands_run_as_written(path):
    text = open(osp.join(ROOT, path)).read()
    problems = check_links(path, text)
    for block in markdown_commands(text):
        problems += check_block(block)
    assert not problems, f'{path}:\n' + '\n'.join(problems)


def test_config_header_commands_run_as_written():
    problems = []
    for path in config_files():
        commands = header_commands(open(osp.join(ROOT, path)).read())
        problems += [f'{path}: {p}' for p in check_block(commands)]
    assert not problems, '\n'.join(problems)


def test_the_checks_fail_for_what_does_not_run():
    """The checks above can fail: each broken command is reported."""
    good = f'{PY} tools/convert_checkpoint.py work_dirs/sdae_vit-b_300e/epoch_300.pth x.pth ' \
        '--to mmseg'
    assert check_command(good) == []
    broken = {
        'python tools/train.py configs/sdae_vit-b_300e.py': 'bare python',
        f'{PY} tools/no_such_tool.py': 'tools/no_such_tool.py does not exist',
        f'{PY} tools/train.py configs/no_such_config.py': 'configs/no_such_config.py',
        f'{PY} tools/convert_checkpoint.py work_dirs/sdae/epoch_300.pth x.pth --to mmseg':
            'no config named sdae.py',
        f'{PY} tools/convert_checkpoint.py work_dirs/sdae_vit-b_300e/epoch_30.pth x.pth '
        '--to mmseg': 'writes no such checkpoint (every 20 epochs up to 300)',
        f'{PY} tools/convert_checkpoint.py a.pth b.pth --to caffe': 'rejects',
        f'{PY} tools/test.py configs/sdae_vit-b_300e.py c.pth --metrics-out m.json': 'rejects',
        'bash tools/dist_train.sh configs/sdae_vit-b_300e.py --resume': 'GPUS must be a number',
        'bash tools/slurm_test.sh p j configs/sdae_vit-b_300e.py': 'missing checkpoint',
        f'{PY} tools/train.py configs/sdae_vit-b_300e.py --cfg-options model.bakbone.x=1':
            'has no model.bakbone',
        'make deploy': 'no such target',
    }
    for command, expected in broken.items():
        problems = check_command(command)
        assert any(expected in p for p in problems), (command, problems)
    assert check_block(['W=work_dirs/sdae_vit-b_300e',
                        f'{PY} tools/convert_checkpoint.py $W/epoch_30.pth o.pth --to timm'])
    assert check_command(
        f'{PY} tools/convert_checkpoint.py work_dirs/sdae_vit-b_300e/epoch_100.pth x.pth '
        '--to mmdet') == []  # an intermediate checkpoint the recipe writes
    assert check_links('docs/x.md', '[a](../no_such_file.md) `python tools/x.py`') == [
        'link ../no_such_file.md -> no_such_file.md does not exist',
        '`python tools/x.py`: use .venv/bin/python']


def test_extraction():
    text = ('intro\n```bash\n# comment\nA=1 bash tools/dist_train.sh \\\n    CFG 8\n'
            '.venv/bin/python -c "\nimport os\nprint(1)"\n```\n'
            '```python\nnot_a_command()\n```\n')
    assert markdown_commands(text) == [['# comment', 'A=1 bash tools/dist_train.sh CFG 8',
                                        '.venv/bin/python -c "\nimport os\nprint(1)"']]
    header = ('# A config.\n# Usage: bash tools/dist_train.sh \\\n#     configs/x.py 8\n'
              '#   .venv/bin/python tools/test.py configs/x.py c.pth\n_base_ = []\n# later\n')
    assert header_commands(header) == ['bash tools/dist_train.sh configs/x.py 8',
                                       '.venv/bin/python tools/test.py configs/x.py c.pth']


def test_every_doc_is_checked():
    assert {'README.md', 'docs/transfer.md', 'docs/get_started.md',
            'configs/sdae/README.md'} <= set(doc_files())
    assert os.path.isfile(osp.join(ROOT, 'Makefile'))
