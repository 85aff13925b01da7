#!/usr/bin/env bash
# The quality-versus-bytes curve of compressing a trained model: train the README's dense
# transformer (2 layers, d_model 128, 2000 steps, seed 42) and the dense MNIST 784-256-10
# classifier once, then compress each with every method and size below (encode only, then
# short fine-tunes from the encoded model, with and without distillation), and write
# benches/results/compression_curve.{md,png} plus the raw JSON lines (compression_curve.jsonl).
#
# Every run appends the JSON line its example prints; the dense models are trained only when
# their checkpoint is missing from $WORK, and a run whose line is already in the JSONL file is
# skipped, so an interrupted curve resumes where it stopped. The table and plot are drawn by
# `cargo run --release --example compression_curve`.
#
# Usage: scripts/compression_curve.sh                 # the full grid (several hours on 2 cores)
#        QUICK=1 scripts/compression_curve.sh         # encode-only for every method, and the
#                                                     # fine-tunes for one size per format
#        WORK=/tmp/curve EVAL_WINDOWS=7813 scripts/compression_curve.sh
#        PARTS="mnist plot" BIN_DIR=/some/dir scripts/compression_curve.sh   # binaries built
#                                                     # before; only MNIST, then the plot
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

WORK=${WORK:-target/compression-curve}
RESULTS=${RESULTS:-benches/results}
BACKEND=${BACKEND:-flex}
# Validation windows of 64 characters for every transformer row (7813 is the whole split).
EVAL_WINDOWS=${EVAL_WINDOWS:-2000}
# The dense run's length; fine-tunes are 5 % and 10 % of it.
DENSE_STEPS=${DENSE_STEPS:-2000}
FT_LR=${FT_LR:-0.001}
MNIST_SEEDS=${MNIST_SEEDS:-"42 43 44"}
QUICK=${QUICK:-0}
PARTS=${PARTS:-"transformer mnist plot"}
export CARGO_INCREMENTAL=0

mkdir -p "$WORK" "$RESULTS"
JSONL="$RESULTS/compression_curve.jsonl"
touch "$JSONL"

if [ -z "${BIN_DIR:-}" ]; then
    cargo build --release --example transformer --example mnist --example compression_curve
    BIN_DIR=target/release/examples
fi
TF=$BIN_DIR/transformer
MNIST=$BIN_DIR/mnist
part() { [[ " $PARTS " == *" $1 "* ]]; }
TF_MODEL=(--backend "$BACKEND" --layers 2 --d-model 128 --heads 4 --context 64 --batch-size 32 --seed 42)

# Runs one configuration unless its key is already in the JSONL file. The key goes into the
# line as "curve_key", next to everything the example reported.
run() {
    local key=$1
    shift
    if grep -q "\"curve_key\":\"$key\"" "$JSONL"; then
        echo "skip $key (already in $JSONL)"
        return
    fi
    echo "== $key: $*" >&2
    local line
    line=$("$@" | tail -n 1)
    case "$line" in
        "{"*"}") ;;
        *) echo "error: $key printed no JSON line" >&2; return 1 ;;
    esac
    echo "{\"curve_key\":\"$key\",${line#\{}" >>"$JSONL"
}

# --- the dense transformer ------------------------------------------------------------------
DENSE="$WORK/transformer-dense"
if part transformer; then
if [ ! -f "$DENSE.rbe" ]; then
    run "tf/dense" "$TF" "${TF_MODEL[@]}" --dense --steps "$DENSE_STEPS" --lr 0.003 \
        --eval-windows "$EVAL_WINDOWS" --save "$DENSE"
fi

# method key -> transformer flags
tf_flags() {
    case $1 in
        paper-b*-r*) local b=${1#paper-b}; local r=${b#*-r}; b=${b%-r*}
                     echo "--format paper --no-transitions --block-size $b --residual-rank $r" ;;
        sign-b8) echo "--format sign --block-size 8" ;;
        ternary-b8) echo "--format ternary --block-size 8" ;;
        lowrank-k*) echo "--compress-as lowrank --rank ${1#lowrank-k}" ;;
        burn-q4) echo "--compress-as burn-q4" ;;
        burn-q2) echo "--compress-as burn-q2" ;;
        *) echo "unknown method $1" >&2; return 1 ;;
    esac
}

PAPER=()
for b in 8 16 32; do for r in 0 4 8 16; do PAPER+=("paper-b$b-r$r"); done; done
TF_METHODS=("${PAPER[@]}" sign-b8 ternary-b8 lowrank-k4 lowrank-k8 lowrank-k16 lowrank-k32)
# Subsets, e.g. TF_METHODS_ONLY="sign-b8 lowrank-k8" TF_TUNED_ONLY="sign-b8".
read -r -a TF_METHODS <<<"${TF_METHODS_ONLY:-${TF_METHODS[*]} burn-q4 burn-q2}"
read -r -a TF_TUNED <<<"${TF_TUNED_ONLY:-${TF_METHODS[*]}}"
if [ "$QUICK" = 1 ] && [ -z "${TF_TUNED_ONLY:-}" ]; then
    TF_TUNED=(paper-b8-r0 paper-b16-r8 sign-b8 ternary-b8 lowrank-k8)
fi
FT5=$((DENSE_STEPS / 20))
FT10=$((DENSE_STEPS / 10))

for m in "${TF_METHODS[@]}"; do
    # shellcheck disable=SC2046
    run "tf/$m/encode" "$TF" "${TF_MODEL[@]}" --init-from "$DENSE" $(tf_flags "$m") \
        --steps 0 --eval-windows "$EVAL_WINDOWS"
done
for m in "${TF_TUNED[@]}"; do
    [[ $m == burn-* ]] && continue # Burn's quantized layers take no training steps
    for steps in "$FT5" "$FT10"; do
        # shellcheck disable=SC2046
        run "tf/$m/ft$steps" "$TF" "${TF_MODEL[@]}" --init-from "$DENSE" $(tf_flags "$m") \
            --steps "$steps" --lr "$FT_LR" --eval-windows "$EVAL_WINDOWS"
    done
    # shellcheck disable=SC2046
    run "tf/$m/ft$FT10-distill" "$TF" "${TF_MODEL[@]}" --init-from "$DENSE" $(tf_flags "$m") \
        --steps "$FT10" --lr "$FT_LR" --distill --eval-windows "$EVAL_WINDOWS"
done

fi

# --- MNIST 784-256-10, both layers compressed ---------------------------------------------------
mnist_flags() {
    case $1 in
        paper-b*-r*) local b=${1#paper-b}; local r=${b#*-r}; b=${b%-r*}
                     echo "--model rbe --format paper --no-transitions --block-size $b --residual-rank $r" ;;
        sign-b8) echo "--model rbe --format sign --block-size 8" ;;
        ternary-b8) echo "--model rbe --format ternary --block-size 8" ;;
        lowrank-k*) echo "--model lowrank --rank ${1#lowrank-k}" ;;
        *) echo "unknown method $1" >&2; return 1 ;;
    esac
}
read -r -a MNIST_METHODS <<<"${MNIST_METHODS_ONLY:-paper-b8-r0 paper-b8-r8 paper-b16-r8 sign-b8 ternary-b8 lowrank-k8 lowrank-k16}"
part mnist && for seed in $MNIST_SEEDS; do
    dense_dir="$WORK/mnist-dense-s$seed"
    if [ ! -f "$dense_dir/model.rbe" ]; then
        run "mnist/dense/s$seed" "$MNIST" --model dense --epochs 5 --seed "$seed" \
            --artifact-dir "$dense_dir"
    fi
    for m in "${MNIST_METHODS[@]}"; do
        for epochs in 0 1; do
            # shellcheck disable=SC2046
            run "mnist/$m/e$epochs/s$seed" "$MNIST" --init-from "$dense_dir/model.rbe" \
                $(mnist_flags "$m") --epochs "$epochs" --seed "$seed" \
                --artifact-dir "$WORK/mnist-$m-e$epochs-s$seed"
        done
    done
done

if part plot; then
    "$BIN_DIR/compression_curve" --input "$JSONL" --out "$RESULTS/compression_curve"
fi
