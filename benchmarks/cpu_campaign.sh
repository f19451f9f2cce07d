#!/usr/bin/env bash
# The full-scale runs of chapters 5 and 6 on a CPU, as one resumable background job.
#
#   CLR_CIFAR10=/abs/path/cifar10-jpeg.tar.gz nohup bash benchmarks/cpu_campaign.sh range table1 seed1 \
#       >> ~/campaign.log 2>&1 &
#
# Each stage writes its results files into clr_book/results/ (OUT) and its checkpoints into the cache folder
# ($CLR_CACHE/checkpoints); stop it any way you like and run the same command again: finished runs are
# read back, an interrupted one continues from its last checkpoint (at most --checkpoint-every seconds
# lost). Run it from a clean checkout (a `git worktree add` of the commit to measure, with OUT pointing
# at the main checkout's clr_book/results) so that every results file records a clean commit.
#
# Stages (in the order given):
#   range   the LR range test: Smith's linear sweep (8 epochs, 4,000 iterations) and the exponential one
#   table1  the five Table 1 policies at the paper's budgets, seed 0 (232,000 iterations)
#   seed1   fixed and triangular2 again with seed 1
#   tta     chapter 7's CPU profile: the range test of the width-16 ResNet-9 that sets every schedule's
#           max_lr, then the six schedules with seeds 0 and 1 (about 2 hours on 2 idle cores)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
OUT="${OUT:-clr_book/results}"
: "${CLR_CIFAR10:?set CLR_CIFAR10 to the absolute path of the CIFAR-10 copy}"
common=(--device cpu --no-download --checkpoint-every "${CHECKPOINT_EVERY:-300}")
for stage in "$@"; do
    echo "=== $stage $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
    case "$stage" in
    range)
        "$PYTHON" -m clr_book.experiments.range_test --profile full --mode both "${common[@]}" --out "$OUT/range_test" ;;
    table1)
        for policy in triangular2 fixed exp_range decay exp; do  # Figure 1's pair first
            "$PYTHON" -m clr_book.experiments.table1 --policy "$policy" --profile full "${common[@]}" --out "$OUT/table1"
        done ;;
    seed1)
        for policy in fixed triangular2; do
            "$PYTHON" -m clr_book.experiments.table1 --policy "$policy" --profile full --seed 1 "${common[@]}" --out "$OUT/table1"
        done ;;
    tta)
        "$PYTHON" -m clr_book.experiments.time_to_accuracy --profile cpu --range-test-only "${common[@]}" \
            --out "$OUT/time_to_accuracy"
        "$PYTHON" -m clr_book.experiments.time_to_accuracy --profile cpu --seeds 0,1 "${common[@]}" \
            --out "$OUT/time_to_accuracy" ;;
    *)
        echo "unknown stage $stage (range, table1, seed1, tta)" >&2; exit 2 ;;
    esac
done
echo "=== done $(date -u +%FT%TZ)"
