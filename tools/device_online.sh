#!/usr/bin/env bash
# Issues 14 and 15's prepared GPU command. Three runs share the one GPU (the student is small;
# one run leaves it mostly idle):
#   a: online distillation from SFace (faceguard/training/online_distill.py): the shipped
#      student fine-tuned (rotated onto SFace's centred space), lr 0.1, BN frozen
#   b: the same from a fresh student (random weights), lr 0.3, BN in train mode
#   c: the shipped student narrowed to 3/4 of its bottlenecks' hidden channels and trained to
#      give the shipped embeddings (faceguard/training/prune.py; issue 15's fewer mult-adds)
# All stop inside MINUTES of wall clock (schedule fitted on the first steps); each is also
# under `timeout` (MINUTES + 45 s, then SIGTERM: the run checkpoints and stops; SIGKILL 20 s
# later), so a crash or a hang of one leaves the others running to their end. They train in
# WORK/{a,b,c} (default /tmp/faceguard_online: a machine kept warm keeps it, so running the
# same command again resumes from last.pt) and copy back to OUT/{a,b,c}: train.log (every
# held-out record is in it) and, where the onnx package is installed, student.onnx (best.pt
# exported); best.pt of a and b — 8 files, the most a device run returns. Whatever of these
# exists is copied on every exit (normal end, a failed run, SIGTERM/SIGINT of this script).
# Printed: the GPU (name, memory, capability, bf16), versions, GPU load every 30 s, each
# phase's wall time, the runs' exit codes. Exit status: 0 when both runs ended with 0.
# Usage on the device, from the repo root, with the bundle carried in .device/online:
#   bash tools/device_online.sh .device/online "$OUT" 7
# A dry run on CPU (for checking the script; EXTRA is passed to a and b, NARROW_EXTRA to c):
#   DEVICE=cpu BATCH=16 WORK=/tmp/od_work EXTRA="--mean-faces 64 --steps 3" \
#       NARROW_EXTRA="--steps 3 --fit-faces 64 --val-faces 64" \
#       bash tools/device_online.sh .device/online /tmp/od_out 1
set -uo pipefail
bundle=$1 out=$2 minutes=${3:-7} device=${DEVICE:-cuda} batch=${BATCH:-512}
work=${WORK:-/tmp/faceguard_online}
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-$PWD}
t0=$SECONDS
phase() { echo "== $1 (t+$((SECONDS - t0)) s)"; }
collected=0
collect() {  # copy whatever exists; safe to call twice
    [ "$collected" = 1 ] && return
    collected=1
    mkdir -p "$out/a" "$out/b" "$out/c"
    for run in a b c; do
        for name in best.pt train.log student.onnx; do
            [ "$run" = c ] && [ "$name" = best.pt ] && continue  # the 8-file limit
            if [ -f "$work/$run/$name" ]; then cp "$work/$run/$name" "$out/$run/"; fi
        done
    done
    phase "copied to $out: $(cd "$out" && find . -type f | sort | tr '\n' ' ')"
}
pids=()
stop_runs() {  # each run forwards the TERM to its python, which checkpoints and stops
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    if [ -n "${pid_smi:-}" ]; then kill "$pid_smi" 2>/dev/null; fi
    if [ ${#pids[@]} -gt 0 ]; then wait "${pids[@]}"; fi
}
trap collect EXIT
trap 'echo "== signal: stopping the runs"; stop_runs; exit 143' TERM INT

phase "device"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader \
    2>/dev/null || echo "nvidia-smi: not available"
python3 - <<'EOF' || echo "python3/torch check failed"
import cv2, numpy, torch
print(f"torch {torch.__version__} (cuda {torch.version.cuda}, cudnn "
      f"{torch.backends.cudnn.version()}), numpy {numpy.__version__}, cv2 {cv2.__version__}")
if torch.cuda.is_available():
    props = torch.cuda.get_device_properties(0)
    free, total = torch.cuda.mem_get_info(0)
    print(f"cuda: {torch.cuda.get_device_name(0)}, capability {props.major}.{props.minor}, "
          f"{props.multi_processor_count} SMs, {total / 2**30:.1f} GiB ({free / 2**30:.1f} free), "
          f"bf16 {torch.cuda.is_bf16_supported()}")
else:
    print("cuda: not available")
EOF

# shellcheck disable=SC2206  # EXTRA is split into words on purpose
common=(--bundle "$bundle" --device "$device" --batch-size "$batch" --minutes "$minutes" --seed 0
        ${EXTRA:-})
limit=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 + 45 }')
# c trains a minute less: it exports its own student.onnx inside the same limit
narrow_minutes=$(awk -v m="$minutes" 'BEGIN { print (m > 2 ? m - 1 : m / 2) }')
narrow=(--bundle "$bundle" --device "$device" --batch-size "$batch" --minutes "$narrow_minutes"
        --seed 0 --keep 0.75 --lr 5e-4 ${NARROW_EXTRA:-})
mkdir -p "$work/a" "$work/b" "$work/c"
phase "training a, b and c, $minutes min each (timeout $limit s)"
run() {  # run NAME MODULE ARGS...: one run in WORK/NAME; its exit code and wall time at the end
    local name=$1 module=$2 start=$SECONDS status child
    shift 2
    timeout -s TERM -k 20 "$limit" python3 -m "faceguard.training.$module" \
        --out "$work/$name" "$@" >> "$work/$name/train.log" 2>&1 &
    child=$!
    trap 'kill -TERM "$child" 2>/dev/null' TERM
    wait "$child"; status=$?
    if kill -0 "$child" 2>/dev/null; then wait "$child"; status=$?; fi  # woken by the TERM
    echo "run $name: exit $status after $((SECONDS - start)) s" | tee -a "$work/$name/train.log"
    return "$status"
}
run a online_distill "${common[@]}" --lr 0.1 &
pid_a=$!
run b online_distill "${common[@]}" --init scratch --lr 0.3 --train-bn &
pid_b=$!
run c prune "${narrow[@]}" &
pid_c=$!
pids=("$pid_a" "$pid_b" "$pid_c")
if command -v nvidia-smi >/dev/null; then  # GPU load while both train
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 30 &
    pid_smi=$!
fi
wait "$pid_a"; status_a=$?
wait "$pid_b"; status_b=$?
wait "$pid_c"; status_c=$?
if [ -n "${pid_smi:-}" ]; then kill "$pid_smi" 2>/dev/null; wait "$pid_smi" 2>/dev/null; fi
pid_smi=
for run in a b c; do
    echo "== $run: last lines of train.log"; tail -n 6 "$work/$run/train.log"
done

phase "export"
if python3 -c "import onnx, onnxruntime" 2>/dev/null; then
    exports=()
    for run in a b; do
        if [ -f "$work/$run/best.pt" ]; then
            (start=$SECONDS
             timeout -s TERM -k 10 90 python3 -m faceguard.training.export \
                 --checkpoint "$work/$run/best.pt" --out "$work/$run/student.onnx" \
                 > "$work/$run/export.log" 2>&1
             echo "export $run: exit $? after $((SECONDS - start)) s"
             tail -n 3 "$work/$run/export.log") &
            exports+=($!)
        else
            echo "export $run: no best.pt"
        fi
    done
    if [ ${#exports[@]} -gt 0 ]; then wait "${exports[@]}"; fi
else
    echo "export: onnx or onnxruntime missing, skipped"
fi
collect
phase "done: exit a=$status_a b=$status_b c=$status_c"
[ "$status_a" = 0 ] && [ "$status_b" = 0 ] && [ "$status_c" = 0 ]
