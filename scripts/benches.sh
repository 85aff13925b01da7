#!/usr/bin/env bash
# Regenerates every committed bench result on this machine, then the speed tables with the
# targets (benches/results/speed_table.md), the chart (benches/results/speedup.png), the
# model-level table and chart (benches/results/model_inference.{md,png}) and, when README.md
# has the `<!-- speed-table:start/end -->`, `<!-- model-table:start/end -->`,
# `<!-- bit-forward-table:start/end -->` and `<!-- bit-training-table:start/end -->` markers,
# the README's sections between them.
#
# - Forward (linear_forward): dense `Linear` against RBE, with RBE's compute bound (its
#   multiply-adds at the best dense multiply-add rate of the same run). CPU grid: shapes
#   1024x1024 and 4096x4096, batches 1, 32, 256, blocks 32 and 8 (minutes on Flex with
#   2 cores).
# - Whole model (model_inference): the README's transformer and a d_model-1024 one whose
#   projections dominate, dense against every projection format: batch-1 generation on a
#   key/value cache (tokens/s) and batch-32 prompts, with where the time goes, memory and
#   each row's physical bound. On lavapipe only the README's transformer runs by default.
# - Dense training step taken apart (dense_step): products, forward with and without
#   autodiff, backward, Adam, each against its compute bound (docs/dense-training-baseline.md).
# - Training step (training_step): the MNIST MLP 784-256-10 (batch 64, B=8) and a 4096-wide
#   layer (batch 64, B=32), RBE with state transitions on and off, the sign blueprint
#   (straight-through and Bop flips) and the ternary format (straight-through), each against
#   the dense model in the same run, with time, memory and the compute bound.
#
# - Flex is the CPU backend (Burn 0.21's recommended one); NdArray is legacy and runs only
#   when asked (`BACKENDS=ndarray`), to reproduce the older results. Neither has a CORDIC
#   kernel: their fallback evaluates the exact closed form whichever kernel is asked, so only
#   the closed form is timed there.
# - WGPU is `burn::backend::Wgpu` with Burn's default features, i.e. fusion and autotune on.
#   It runs on whatever adapter wgpu picks; on a machine without a GPU that is Mesa's
#   software Vulkan (lavapipe). The CORDIC kernel generates every weight with the 20-step
#   loop, which lavapipe cannot do at the larger shapes in reasonable time, so it is timed
#   at 1024x1024, batches 1 and 32 only. On lavapipe the whole WGPU part takes about an
#   hour; the closed-form 4096x11008 B=8 batch-256 case alone takes minutes per call. The
#   4096-wide training step is timed with the closed form only.
# - CUDA: `BACKENDS=cuda scripts/benches.sh` after building with `--features cuda`.
#
# Usage: scripts/benches.sh            (flex and wgpu, default effort)
#        BACKENDS=flex scripts/benches.sh -- --quick
#        BACKENDS=ndarray scripts/benches.sh   (legacy CPU backend)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Everything after an optional leading `--` goes to criterion (`-- --quick` or `--quick`).
if [[ "${1:-}" == "--" ]]; then
    shift
fi

BACKENDS=${BACKENDS:-flex,wgpu}
export CARGO_INCREMENTAL=0
if [[ -z "${XDG_RUNTIME_DIR:-}" ]]; then
    XDG_RUNTIME_DIR=$(mktemp -d)
    chmod 0700 "${XDG_RUNTIME_DIR}"
    export XDG_RUNTIME_DIR
fi

features=()
[[ ",${BACKENDS}," == *,cuda,* ]] && features=(--features cuda)

bench() {
    echo "==> $*"
    env "$@"
}

for backend in ${BACKENDS//,/ }; do
    case "${backend}" in
    flex | ndarray)
        bench RBE_BENCH_BACKENDS="${backend}" RBE_BENCH_KERNELS=closed-form \
            cargo bench "${features[@]}" --bench linear_forward -- "${@}"
        bench RBE_BENCH_BACKENDS="${backend}" RBE_BENCH_KERNELS=closed-form \
            cargo bench "${features[@]}" --bench training_step -- "${@}"
        bench RBE_BENCH_BACKENDS="${backend}" RBE_BENCH_KERNELS=closed-form \
            cargo bench "${features[@]}" --bench weight_generation -- "${@}"
        bench RBE_BENCH_BACKENDS="${backend}" \
            cargo bench "${features[@]}" --bench model_inference -- "${@}"
        bench RBE_BENCH_BACKENDS="${backend}" \
            cargo bench "${features[@]}" --bench dense_step -- "${@}"
        ;;
    wgpu | cuda)
        bench RBE_BENCH_BACKENDS="${backend}" RBE_BENCH_KERNELS=closed-form \
            cargo bench "${features[@]}" --bench linear_forward -- "${@}"
        bench RBE_BENCH_BACKENDS="${backend}" RBE_BENCH_KERNELS=cordic RBE_BENCH_SHAPES=1024x1024 RBE_BENCH_BATCHES=1,32 \
            cargo bench "${features[@]}" --bench linear_forward -- "${@}"
        bench RBE_BENCH_BACKENDS="${backend}" RBE_BENCH_MODELS=mlp \
            cargo bench "${features[@]}" --bench training_step -- "${@}"
        bench RBE_BENCH_BACKENDS="${backend}" RBE_BENCH_MODELS=wide RBE_BENCH_KERNELS=closed-form \
            cargo bench "${features[@]}" --bench training_step -- "${@}"
        bench RBE_BENCH_BACKENDS="${backend}" RBE_BENCH_SHAPES=1024x1024,4096x4096 \
            cargo bench "${features[@]}" --bench weight_generation -- "${@}"
        bench RBE_BENCH_BACKENDS="${backend}" \
            cargo bench "${features[@]}" --bench model_inference -- "${@}"
        ;;
    *)
        echo "unknown backend ${backend} (flex, wgpu, ndarray, cuda)" >&2
        exit 1
        ;;
    esac
done

report=()
if grep -q '<!-- speed-table:start -->' README.md && grep -q '<!-- speed-table:end -->' README.md; then
    report=(-- --readme README.md)
fi
cargo run --release --example bench_report "${report[@]}"
