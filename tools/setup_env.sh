#!/usr/bin/env bash
# Create .venv/ in the repository root and install sdae-mm with the whole OpenMMLab stack.
#
# Idempotent: when .venv/ already holds what the requirement files ask for (a stamp of their
# content), the script returns in about a second. mmcv's compiled wheel is cached in
# ${SDAE_MM_CACHE:-~/.cache/sdae-mm}; on a machine without it, the build (about 30 minutes
# on 2 cores) runs in the background while the rest of the stack installs.
#
# Usage: bash tools/setup_env.sh            (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV="$ROOT/.venv"
PY_BIN=${PYTHON:-$(command -v python3.11 || command -v python3)}
CACHE=${SDAE_MM_CACHE:-$HOME/.cache/sdae-mm}
stamp_of() { cat requirements/*.txt setup.py tools/setup_env.sh tools/build_mmcv.sh | sha256sum | cut -c1-16; }
STAMP=$(stamp_of)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.sdae-mm-stamp" 2>/dev/null)" = "$STAMP" ]; then
  echo "[setup] .venv is up to date"
  exit 0
fi
t0=$(date +%s)
log() { echo "[setup +$(( $(date +%s) - t0 ))s] $*"; }
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
log "done"
