#!/usr/bin/env bash
# Training on a Slurm cluster (srun, one task per GPU).
#
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py args]
#
# WORK_DIR is taken only when the 4th argument is not a flag (default:
# work_dirs/<config name>). Environment: GPUS (total, default 8), GPUS_PER_NODE (default 8),
# CPUS_PER_TASK (default 5), SRUN_ARGS (more srun options).
#   GPUS=16 tools/slurm_train.sh PARTITION sdae CONFIG            # 2 nodes x 8 GPUs
#   tools/slurm_train.sh PARTITION sdae CONFIG --resume            # latest checkpoint
#   tools/slurm_train.sh PARTITION sdae CONFIG work_dirs/x --resume work_dirs/x/epoch_10.pth
# Python: $PYTHON, else the repository's .venv/bin/python, else python3 (the nodes must see
# the same path).
set -euo pipefail
usage() {
  sed -n '2,14s/^# \{0,1\}//p' "$0"
}
case "${1:-}" in -h | --help) usage; exit 0 ;; esac
if [ $# -lt 3 ]; then
  usage >&2
  echo "error: expected PARTITION JOB_NAME CONFIG, got: $*" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
WORK_ARGS=()
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  WORK_ARGS=(--work-dir "$1")
  shift
fi
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
    "$PYTHON" -u "$ROOT/tools/train.py" "$CONFIG" ${WORK_ARGS[@]+"${WORK_ARGS[@]}"} \
    --launcher=slurm "$@"
