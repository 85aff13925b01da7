#!/usr/bin/env bash
# Regenerates every committed bench result on this machine, then the README's speed table
# (benches/results/speed_table.md) and chart (benches/results/speedup.png).
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
#   hour; the closed-form 4096x11008 B=8 batch-256 case alone takes minutes per call.
# - CUDA: `BACKENDS=cuda scripts/benches.sh` after building with `--features cuda`.
#
# Usage: scripts/benches.sh            (flex and wgpu, default effort)
#        BACKENDS=flex scripts/benches.sh -- --quick
#        BACKENDS=ndarray scripts/benches.sh   (legacy CPU backend)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

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
        ;;
    wgpu | cuda)
        bench RBE_BENCH_BACKENDS="${backend}" RBE_BENCH_KERNELS=closed-form \
            cargo bench "${features[@]}" --bench linear_forward -- "${@}"
        bench RBE_BENCH_BACKENDS="${backend}" RBE_BENCH_KERNELS=cordic RBE_BENCH_SHAPES=1024x1024 RBE_BENCH_BATCHES=1,32 \
            cargo bench "${features[@]}" --bench linear_forward -- "${@}"
        bench RBE_BENCH_BACKENDS="${backend}" \
            cargo bench "${features[@]}" --bench training_step -- "${@}"
        bench RBE_BENCH_BACKENDS="${backend}" RBE_BENCH_SHAPES=1024x1024,4096x4096 \
            cargo bench "${features[@]}" --bench weight_generation -- "${@}"
        ;;
    *)
        echo "unknown backend ${backend} (flex, wgpu, ndarray, cuda)" >&2
        exit 1
        ;;
    esac
done

cargo run --release --example bench_report
