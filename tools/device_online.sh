#!/usr/bin/env bash
# Issue 14's prepared GPU command: online distillation from SFace (faceguard/training/online_distill.py).
# Two recipes share the one GPU (the student is small; one run leaves it mostly idle):
#   a: the shipped student fine-tuned (rotated onto SFace's centred space), lr 0.1, BN frozen
#   b: a fresh student from random weights, lr 0.3, BN in train mode
# Both stop inside MINUTES of wall clock (schedule fitted on the first steps) and write
# OUT/{a,b}/best.pt, last.pt (resume: run the same command again), history.json, train.log;
# where the onnx package is installed, each best.pt is also exported to OUT/{a,b}/student.onnx.
# Usage on the device, from the repo root, with the bundle carried in .device/online:
#   bash tools/device_online.sh .device/online "$OUT" 7
# A dry run on CPU (slow, for checking the script): DEVICE=cpu BATCH=32 bash tools/device_online.sh ...
set -uo pipefail
bundle=$1 out=$2 minutes=${3:-7} device=${DEVICE:-cuda} batch=${BATCH:-512}
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-$PWD}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, numpy, cv2; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'cv2', cv2.__version__)"
common=(--bundle "$bundle" --device "$device" --batch-size "$batch" --minutes "$minutes" --seed 0)
mkdir -p "$out/a" "$out/b"
python3 -m faceguard.training.online_distill "${common[@]}" --out "$out/a" --lr 0.1 \
    > "$out/a/train.log" 2>&1 &
pid_a=$!
python3 -m faceguard.training.online_distill "${common[@]}" --out "$out/b" --init scratch \
    --lr 0.3 --train-bn > "$out/b/train.log" 2>&1 &
pid_b=$!
wait $pid_a; status_a=$?
wait $pid_b; status_b=$?
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader || true
for run in a b; do
    echo "== $run"; tail -n 5 "$out/$run/train.log"
    if [ -f "$out/$run/best.pt" ] && python3 -c "import onnx" 2>/dev/null; then
        python3 -m faceguard.training.export --checkpoint "$out/$run/best.pt" \
            --out "$out/$run/student.onnx" | tail -n 2
    fi
done
rm -f "$out"/*/*.tmp
echo "exit a=$status_a b=$status_b"
