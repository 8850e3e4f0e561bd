#!/usr/bin/env bash
# One training session on a lent GPU machine (see faceguard/training/distill.py).
# Runs two distillation recipes side by side on the one GPU (the net is small; one run
# leaves the GPU mostly idle) and returns both; the better held-out cosine is exported.
# Usage there, from the repo root, with the bundle carried in .device/bundle:
#   bash tools/device_train.sh .device/bundle "$OUT" MINUTES
set -uo pipefail
bundle=$1 out=$2 minutes=${3:-8}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, numpy, cv2; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'cv2', cv2.__version__)"
common=(--data "$bundle" --device cuda --batch-size 512 --epochs 400 --warmup-epochs 3
        --budget-minutes "$minutes" --fit-budget --workers 8 --no-progress --seed 0)
mkdir -p "$out/a" "$out/b"
python3 -m faceguard.training.distill "${common[@]}" --out "$out/a" --lr 0.3 \
    --relation-weight 1.0 > "$out/a/train.log" 2>&1 &
pid_a=$!
python3 -m faceguard.training.distill "${common[@]}" --out "$out/b" --lr 0.15 \
    --relation-weight 2.0 > "$out/b/train.log" 2>&1 &
pid_b=$!
wait $pid_a; status_a=$?
wait $pid_b; status_b=$?
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
for run in a b; do echo "== $run"; tail -n 4 "$out/$run/train.log"; done
rm -f "$out"/*/last.pt.tmp
echo "exit a=$status_a b=$status_b"
