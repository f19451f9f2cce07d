#!/usr/bin/env bash
# The GPU work of the book as one prepared script, for a machine with one CUDA GPU, torch installed,
# and no internet (the project's device machine) or any CUDA machine.
#
#   here, once:  make gpu-prep                      # fills .gpu/ (git-ignored): the CIFAR-10 tarball and
#                                                   # pure-Python wheels (tqdm, pytest)
#   there:       bash benchmarks/gpu_session.sh STAGE...      (device tool: carry [".gpu"])
#
# Stages, most important first, with their design targets on an H100 (none measured yet):
#   check   the CUDA-graph test, smoke runs of every CUDA path, a short speed benchmark   (~2-3 min)
#   tta     chapter 7: six schedules x 3 seeds on ResNet-9, time to 90 %              (< 10 min)
#   table1  chapter 6: the five Table 1 policies, 232,000 iterations, --jobs 5         (< 10 min)
#   range   chapter 5: Smith's linear and fast.ai's exponential sweep                  (a few min)
# Each stage packs what it wrote into $OUT/<stage>.tar.gz (the device tool returns at most 8 files)
# and logs to $OUT/<stage>.log. Unpack the tarballs here into clr_book/results/ and commit them.
#
# DEVICE (default cuda) and PROFILE (default full) may be overridden, e.g. to rehearse the plumbing on a
# CPU: DEVICE=cpu PROFILE=smoke bash benchmarks/gpu_session.sh tta table1 range
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
PROFILE="${PROFILE:-full}"
OUT="${OUT:-_build/gpu}"        # what comes back: <stage>.tar.gz and <stage>.log only
WORK="_build/gpu-work"          # the results files themselves, before packing
export PYTHONUNBUFFERED=1
export CLR_CIFAR10="${CLR_CIFAR10:-$PWD/.gpu/cifar10-jpeg.tar.gz}"
mkdir -p "$OUT" "$WORK"

[ $# -gt 0 ] || { echo "usage: $0 check|tta|table1|range ..." >&2; exit 2; }
for stage in "$@"; do
    case "$stage" in check|tta|table1|range) ;; *) echo "unknown stage: $stage (check, tta, table1, range)" >&2; exit 2;; esac
done
[ -f "$CLR_CIFAR10" ] || { echo "CLR_CIFAR10=$CLR_CIFAR10 does not exist (run make gpu-prep here first)" >&2; exit 2; }
if ! "$PYTHON" -c "import tqdm, pytest" 2>/dev/null; then
    "$PYTHON" -m pip install --quiet --no-index --no-deps .gpu/wheels/*.whl
fi
"$PYTHON" - <<'PY'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device: "
      f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device'}")
PY

run_stage() {  # name, then the command; results go to $WORK/<name>/, packed into $OUT/<name>.tar.gz
    local name="$1"; shift
    local folder="$WORK/$name"
    mkdir -p "$folder"
    echo "== $name: $* ($(date -u +%FT%TZ))"
    local status=0
    SECONDS=0
    "$@" 2>&1 | tee "$OUT/$name.log" || status=$?
    echo "== $name: exit status $status after $SECONDS s" | tee -a "$OUT/$name.log"
    tar -czf "$OUT/$name.tar.gz" -C "$folder" .
    return "$status"
}

for stage in "$@"; do
    case "$stage" in
    check)
        run_stage check bash -c "
            set -e
            $PYTHON -m pytest -q -p no:cacheprovider tests/test_cifar_graphed.py
            for policy in fixed exp_range; do
                $PYTHON -m clr_book.experiments.table1 --policy \$policy --profile smoke --device $DEVICE --amp bf16 --out $WORK/check/table1-bf16 --no-download
            done
            if [ $DEVICE = cuda ]; then
                $PYTHON -m clr_book.experiments.table1 --policy exp_range --profile smoke --device cuda --step cuda_graph --out $WORK/check/table1-graph --no-download
            fi
            $PYTHON -m clr_book.experiments.time_to_accuracy --profile smoke --device $DEVICE --out $WORK/check/tta
            $PYTHON -m clr_book.experiments.range_test --profile smoke --mode both --device $DEVICE --out $WORK/check/range --no-download
            $PYTHON -m clr_book.experiments.range_test --profile smoke --mode linear --device $DEVICE --amp bf16 --out $WORK/check/range-bf16 --no-download
            $PYTHON benchmarks/bench_training.py --quick --skip-data --device $DEVICE"
        ;;
    tta)
        run_stage tta "$PYTHON" -m clr_book.experiments.time_to_accuracy --profile "$PROFILE" --device "$DEVICE" \
            --out "$WORK/tta" --checkpoint-dir "$WORK/checkpoints" ;;
    table1)
        run_stage table1 "$PYTHON" -m clr_book.experiments.table1 --policy all --profile "$PROFILE" --device "$DEVICE" --jobs 5 \
            --no-download --out "$WORK/table1" --checkpoint-dir "$WORK/checkpoints" ;;
    range)
        run_stage range "$PYTHON" -m clr_book.experiments.range_test --profile "$PROFILE" --mode both \
            --device "$DEVICE" --no-download --out "$WORK/range" --checkpoint-dir "$WORK/checkpoints" ;;
    esac
done
