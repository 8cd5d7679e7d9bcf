#!/usr/bin/env bash
# Distributed testing with torchrun (one process per GPU).
#
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
#
# e.g. tools/dist_test.sh CONFIG CKPT 8 --json metrics.json --show-dir vis
# GPUS is the number of processes on this node; several nodes: NNODES, NODE_RANK,
# MASTER_ADDR and PORT as for tools/dist_train.sh.
# Python: $PYTHON, else the repository's .venv/bin/python, else python3.
set -euo pipefail
usage() {
  sed -n '2,9s/^# \{0,1\}//p' "$0"
}
case "${1:-}" in -h | --help) usage; exit 0 ;; esac
if [ $# -lt 3 ] || [[ ! "$3" =~ ^[1-9][0-9]*$ ]]; then
  usage >&2
  echo "error: expected CONFIG CHECKPOINT GPUS, got: $*" >&2
  exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
