#!/usr/bin/env bash
# Distributed training with torchrun (one process per GPU).
#
#   tools/dist_train.sh CONFIG GPUS [train.py args]
#
# GPUS is the number of processes on this node. Several nodes: run the same command on each,
# with NNODES, NODE_RANK (0 .. NNODES-1), MASTER_ADDR (node 0's address) and PORT set, e.g.
# a 16-GPU recipe on 2 nodes x 8:
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 tools/dist_train.sh CONFIG 8   # on node0
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=node0 tools/dist_train.sh CONFIG 8   # on node1
# Resume: add --resume (latest checkpoint of the work dir) or --resume PATH.
# Python: $PYTHON, else the repository's .venv/bin/python, else python3.
# On a machine without GPUs the processes use gloo on the CPU.
set -euo pipefail
usage() {
  sed -n '2,13s/^# \{0,1\}//p' "$0"
}
case "${1:-}" in -h | --help) usage; exit 0 ;; esac
if [ $# -lt 2 ] || [[ ! "$2" =~ ^[1-9][0-9]*$ ]]; then
  usage >&2
  echo "error: expected CONFIG GPUS, got: $*" >&2
  exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
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
    "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "$@"
