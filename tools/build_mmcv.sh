#!/usr/bin/env bash
# Build (or reuse) an mmcv 2.1.0 wheel with compiled ops for the torch in the given venv.
#
# mmcv publishes no wheel for torch 2.14 on PyPI, and its setup.py pins -std=c++17 while
# torch 2.14's headers need C++20. We download mmcv's own PyPI source distribution, raise
# the standard to C++20 in that temporary copy, and build a wheel. The wheel is kept in a
# cache keyed by mmcv, torch and Python versions, so later set-ups install it in seconds.
#
# Usage: tools/build_mmcv.sh PYTHON [CACHE_DIR]
set -euo pipefail
PY=${1:?usage: build_mmcv.sh PYTHON [CACHE_DIR]}
CACHE=${2:-${SDAE_MM_CACHE:-$HOME/.cache/sdae-mm}}
MMCV_VERSION=2.1.0
key=$("$PY" -c 'import sys, torch; v = torch.__version__.split("+")[0]; print("torch%s-cp%d%d" % (v, *sys.version_info[:2]))')
dest="$CACHE/wheels/mmcv-$MMCV_VERSION-$key"
mkdir -p "$dest"
if ls "$dest"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; then
  echo "[build_mmcv] cached wheel: $(ls "$dest"/mmcv-$MMCV_VERSION-*.whl)"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "[build_mmcv] building mmcv $MMCV_VERSION with ops for $key (about 7.5 min on 2 idle cores)"
"$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
  "mmcv==$MMCV_VERSION" -d "$work"
tar xzf "$work"/mmcv-$MMCV_VERSION.tar.gz -C "$work"
src="$work/mmcv-$MMCV_VERSION"
# torch >= 2.10 headers use C++20 features; mmcv 2.1.0 hard-codes c++14/c++17.
sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
grep -q -- '-std=c++20' "$src/setup.py"
# -g0: no debug info (the interpreter's CFLAGS carry -g), which cuts compile time.
MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} CFLAGS="${CFLAGS:-} -g0" \
  "$PY" -m pip wheel -q --no-deps --no-build-isolation "$src" -w "$work/dist"
mv "$work"/dist/mmcv-$MMCV_VERSION-*.whl "$dest"/
echo "[build_mmcv] built $(ls "$dest"/mmcv-$MMCV_VERSION-*.whl)"
