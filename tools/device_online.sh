#!/usr/bin/env bash
# Issue 14's prepared GPU command: online distillation from SFace (faceguard/training/online_distill.py).
# Two recipes share the one GPU (the student is small; one run leaves it mostly idle):
#   a: the shipped student fine-tuned (rotated onto SFace's centred space), lr 0.1, BN frozen
#   b: a fresh student from random weights, lr 0.3, BN in train mode
# Both stop inside MINUTES of wall clock (schedule fitted on the first steps). They train in
# WORK/{a,b} (default /tmp/faceguard_online: a machine kept warm keeps it, so running the same
# command again resumes from last.pt) and copy back to OUT/{a,b}: best.pt, history.json,
# train.log and, where the onnx package is installed, student.onnx (best.pt exported) —
# 8 files, the most a device run returns.
# Usage on the device, from the repo root, with the bundle carried in .device/online:
#   bash tools/device_online.sh .device/online "$OUT" 7
# A dry run on CPU (for checking the script; EXTRA is passed to both runs):
#   DEVICE=cpu BATCH=16 EXTRA="--mean-faces 64 --steps 3" bash tools/device_online.sh ...
set -uo pipefail
bundle=$1 out=$2 minutes=${3:-7} device=${DEVICE:-cuda} batch=${BATCH:-512}
work=${WORK:-/tmp/faceguard_online}
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-$PWD}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, numpy, cv2; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'cv2', cv2.__version__)"
# shellcheck disable=SC2206  # EXTRA is split into words on purpose
common=(--bundle "$bundle" --device "$device" --batch-size "$batch" --minutes "$minutes" --seed 0
        ${EXTRA:-})
mkdir -p "$work/a" "$work/b" "$out/a" "$out/b"
python3 -m faceguard.training.online_distill "${common[@]}" --out "$work/a" --lr 0.1 \
    >> "$work/a/train.log" 2>&1 &
pid_a=$!
python3 -m faceguard.training.online_distill "${common[@]}" --out "$work/b" --init scratch \
    --lr 0.3 --train-bn >> "$work/b/train.log" 2>&1 &
pid_b=$!
wait $pid_a; status_a=$?
wait $pid_b; status_b=$?
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader || true
for run in a b; do
    echo "== $run"; tail -n 5 "$work/$run/train.log"
    if [ -f "$work/$run/best.pt" ] && python3 -c "import onnx" 2>/dev/null; then
        python3 -m faceguard.training.export --checkpoint "$work/$run/best.pt" \
            --out "$work/$run/student.onnx" | tail -n 2
    fi
    for name in best.pt history.json train.log student.onnx; do
        [ -f "$work/$run/$name" ] && cp "$work/$run/$name" "$out/$run/"
    done
done
echo "exit a=$status_a b=$status_b"
