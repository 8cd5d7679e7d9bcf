#!/usr/bin/env bash
# Testing on a Slurm cluster (srun, one task per GPU).
#
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
#
# Environment: GPUS (total, default 8), GPUS_PER_NODE (default 8), CPUS_PER_TASK (default
# 5), SRUN_ARGS (more srun options).
#   tools/slurm_test.sh PARTITION test CONFIG CKPT --json work_dirs/x/metrics.json
# Python: $PYTHON, else the repository's .venv/bin/python, else python3 (the nodes must see
# the same path).
set -euo pipefail
usage() {
  sed -n '2,10s/^# \{0,1\}//p' "$0"
}
case "${1:-}" in -h | --help) usage; exit 0 ;; esac
if [ $# -lt 4 ]; then
  usage >&2
  echo "error: expected PARTITION JOB_NAME CONFIG CHECKPOINT, got: $*" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
if [ "$GPUS" -lt "$GPUS_PER_NODE" ]; then GPUS_PER_NODE=$GPUS; fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
if ! command -v srun >/dev/null; then
  echo "error: srun not found: $(basename "$0") runs on a Slurm cluster;" \
    "on one machine use tools/dist_train.sh or tools/dist_test.sh" >&2
  exit 127
fi
# shellcheck disable=SC2086  # SRUN_ARGS holds several options
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec srun -p "$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 $SRUN_ARGS \
    "$PYTHON" -u "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher=slurm "$@"
