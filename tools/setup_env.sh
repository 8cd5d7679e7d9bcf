#!/usr/bin/env bash
# Create .venv/ in the repository root and install sdae-mm with the whole OpenMMLab stack.
#
# Idempotent: when .venv/ holds what the requirement files ask for, the script returns in
# about 2 seconds. "Holds" is checked, not assumed: a stamp of the requirement files'
# content, every pin and range of requirements/ against the installed versions, sdae_mm
# installed, and `pip check`. A drifted environment (e.g. numpy 2 or another setuptools
# pulled in by a later `pip install`) is repaired by the same install steps. mmcv's compiled
# wheel is cached in ${SDAE_MM_CACHE:-~/.cache/sdae-mm}; on a machine without it, the
# build (about 7.5 minutes on 2 idle cores) runs in the background while the rest installs.
#
# Usage: bash tools/setup_env.sh [--check]
#   --check   only report drift (exit 0: up to date, 1: drifted or missing); install nothing
# PYTHON=python3.11 chooses the interpreter of a new venv; SDAE_MM_VENV another venv path.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
case "${1:-}" in
  -h | --help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
  --check | '') ;;
  *) echo "usage: bash tools/setup_env.sh [--check]" >&2; exit 2 ;;
esac
VENV=${SDAE_MM_VENV:-$ROOT/.venv}
PY_BIN=${PYTHON:-$(command -v python3.11 || command -v python3)}
CACHE=${SDAE_MM_CACHE:-$HOME/.cache/sdae-mm}
stamp_of() { cat requirements/*.txt setup.py tools/setup_env.sh tools/build_mmcv.sh | sha256sum | cut -c1-16; }
STAMP=$(stamp_of)

# Prints one line per difference between $VENV and requirements/; status 1 if any.
drift() {
  [ -x "$VENV/bin/python" ] || { echo "no interpreter at $VENV/bin/python"; return 1; }
  [ "$(cat "$VENV/.sdae-mm-stamp" 2>/dev/null)" = "$STAMP" ] ||
    echo "stamp differs from requirements/"
  "$VENV/bin/python" - requirements/*.txt <<'PYEOF' || return 1
import re
import sys
from importlib import metadata

try:
    from packaging.requirements import Requirement
except ImportError:  # a venv without packaging: pip's copy
    from pip._vendor.packaging.requirements import Requirement

problems = []
for path in sys.argv[1:]:
    for line in open(path):
        line = re.sub(r'\s+#.*', '', line).strip()
        if not line or line.startswith(('#', '-')):
            continue
        req = Requirement(line)
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f'{req.name} is not installed ({path}: {line})')
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            problems.append(f'{req.name}=={version} is installed, {path} asks {req.specifier}')
try:
    metadata.version('sdae_mm')
except metadata.PackageNotFoundError:
    problems.append('sdae_mm is not installed (pip install -e .)')
if problems:
    print('\n'.join(sorted(set(problems))))
    sys.exit(1)
PYEOF
  local out
  out=$("$VENV/bin/python" -m pip check 2>&1) || { echo "pip check: $out"; return 1; }
  [ "$(cat "$VENV/.sdae-mm-stamp" 2>/dev/null)" = "$STAMP" ]
}

if [ "${1:-}" = --check ]; then
  if report=$(drift); then echo "[setup] $VENV is up to date"; exit 0; fi
  echo "[setup] $VENV has drifted from requirements/:"; echo "$report" | sed 's/^/  - /'
  exit 1
fi
if report=$(drift); then
  echo "[setup] .venv is up to date"
  exit 0
fi
t0=$(date +%s)
log() { echo "[setup +$(( $(date +%s) - t0 ))s] $*"; }
[ -x "$VENV/bin/python" ] && { log "repairing $VENV:"; echo "$report" | sed 's/^/  - /'; }
[ -x "$VENV/bin/python" ] || { log "creating $VENV with $PY_BIN"; "$PY_BIN" -m venv "$VENV"; }
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q -c requirements/constraints.txt)
log "build tools and torch"
"${PIP[@]}" -r requirements/build.txt
"${PIP[@]}" -r requirements/torch.txt
mkdir -p "$CACHE"
build_log="$CACHE/build_mmcv.log"
log "mmcv wheel (cached or built in the background; log: $build_log)"
bash tools/build_mmcv.sh "$PY" "$CACHE" >"$build_log" 2>&1 &
build_pid=$!
log "runtime, test and lint requirements"
"${PIP[@]}" -r requirements/runtime.txt -r requirements/tests.txt -r requirements/lint.txt
if ! wait "$build_pid"; then
  cat "$build_log"; echo "[setup] building mmcv failed (log above)" >&2; exit 1
fi
tail -1 "$build_log"
key=$("$PY" -c 'import sys, torch; v = torch.__version__.split("+")[0]; print("torch%s-cp%d%d" % (v, *sys.version_info[:2]))')
"${PIP[@]}" --no-deps "$CACHE"/wheels/mmcv-2.1.0-"$key"/mmcv-2.1.0-*.whl
log "sdae_mm (editable)"
"${PIP[@]}" --no-deps --no-build-isolation -e .
"$PY" tools/analysis_tools/check_env.py
echo "$STAMP" >"$VENV/.sdae-mm-stamp"
if ! report=$(drift); then
  echo "[setup] still differs from requirements/ after installing:" >&2
  echo "$report" | sed 's/^/  - /' >&2
  echo "[setup] a package installed by hand conflicts with the pins; see docs/get_started.md" \
    "(\"Installing more packages\")" >&2
  exit 1
fi
log "done"
