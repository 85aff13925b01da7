#!/usr/bin/env bash
# The device script: everything this project measures or checks on an NVIDIA GPU, run from
# prebuilt binaries on a machine that has the GPU but no Rust toolchain and no network.
#
# 1. Here, with the toolchain (about 40 minutes from clean on 2 cores):
#
#        scripts/gpu.sh --build
#
#    builds the examples, the benches and the rbe-burn unit tests in release mode with
#    `--features cuda` and copies the binaries into `.device-bin/` (git-ignored).
#
# 2. There, from the repository root with `.device-bin/` copied along:
#
#        scripts/gpu.sh
#
#    - `nvidia-smi -L`: the machine, named in every result;
#    - `backend_check --backend cuda` (closed form and CORDIC), and `--backend wgpu` when
#      wgpu finds a Vulkan adapter (the GPU's own driver, or lavapipe, which it names);
#    - the rbe-burn unit tests whose backend is CUDA: every seed format's forward, backward,
#      decode and bit rule against the f64 reference on `Cuda<f32, i32>`;
#    - the forward, training-step and whole-model benches on CUDA and on WGPU over Vulkan
#      (`--quick`, shapes trimmed to fit the device time), JSON under `benches/results/`;
#    - with two or more GPUs, MNIST trained on all of them (`--devices N`, then `--ddp`)
#      when the MNIST files are at `$RBE_MNIST_DIR` or `shared/data/mnist`.
#
#    Every step's output goes to stdout; a failed step is reported and the rest still run,
#    and the exit status says whether any failed. Commit the printed JSON lines and the
#    files under `benches/results/` with the machine named.
#
# RBE_GPU_QUICK=0 runs the benches' default grids instead of the trimmed ones.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=.device-bin

if [[ "${1:-}" == "--build" ]]; then
    set -e
    cargo build --release --features cuda --examples --benches
    mkdir -p "${BIN}"
    for example in backend_check mnist; do
        cp "target/release/examples/${example}" "${BIN}/"
    done
    for bench in linear_forward training_step model_inference; do
        # The newest bench binary of that name (cargo names them `<bench>-<hash>`).
        path=$(ls -t target/release/deps/"${bench}"-* | grep -v '\.d$' | head -n 1)
        cp "${path}" "${BIN}/${bench}"
    done
    tests=$(cargo test --release -p rbe-burn --features cuda --lib --no-run 2>&1 |
        sed -n 's/.*Executable unittests src\/lib.rs (\(.*\))/\1/p' | tail -n 1)
    cp "${tests}" "${BIN}/rbe_burn_tests"
    git describe --always --dirty >"${BIN}/REV"
    ls -l "${BIN}"
    exit 0
fi

if [[ ! -d "${BIN}" ]]; then
    echo "error: ${BIN}/ is missing; run scripts/gpu.sh --build on a machine with the Rust toolchain and copy it here" >&2
    exit 2
fi

failed=0
step() {
    echo "==> $*"
    if ! "$@"; then
        echo "FAILED: $*"
        failed=1
    fi
}

if [[ -z "${XDG_RUNTIME_DIR:-}" ]]; then
    XDG_RUNTIME_DIR=$(mktemp -d)
    chmod 0700 "${XDG_RUNTIME_DIR}"
    export XDG_RUNTIME_DIR
fi
# The benches would write beside the source tree they were built from; write here instead.
export RBE_BENCH_OUT="${PWD}/benches/results"
mkdir -p "${RBE_BENCH_OUT}"

echo "==> binaries built from $(cat "${BIN}/REV" 2>/dev/null || echo 'an unknown revision')"
step nvidia-smi -L
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)

step "${BIN}/backend_check" --backend cuda
step "${BIN}/backend_check" --backend cuda --kernel cordic
step "${BIN}/backend_check" --backend wgpu
step "${BIN}/rbe_burn_tests" cuda --test-threads 1

if [[ "${RBE_GPU_QUICK:-1}" == "1" ]]; then
    export RBE_BENCH_SHAPES=${RBE_BENCH_SHAPES:-4096x4096}
    export RBE_BENCH_BATCHES=${RBE_BENCH_BATCHES:-1,32,256}
    export RBE_BENCH_BLOCKS=${RBE_BENCH_BLOCKS:-8,32}
    export RBE_BENCH_WIDE_BLOCKS=${RBE_BENCH_WIDE_BLOCKS:-8}
    export RBE_BENCH_TRANSITIONS=${RBE_BENCH_TRANSITIONS:-off}
fi
for backend in cuda wgpu; do
    step env RBE_BENCH_BACKENDS="${backend}" "${BIN}/linear_forward" --bench --quick
    step env RBE_BENCH_BACKENDS="${backend}" "${BIN}/training_step" --bench --quick
    step env RBE_BENCH_BACKENDS="${backend}" "${BIN}/model_inference" --bench --quick
done

if [[ "${gpus}" -ge 2 ]]; then
    data=${RBE_MNIST_DIR:-shared/data/mnist}
    if [[ -d "${data}" ]]; then
        for mode in "" --ddp; do
            step "${BIN}/mnist" --backend cuda --devices "${gpus}" ${mode} --epochs 1 \
                --data-dir "${data}" --artifact-dir "$(mktemp -d)"
        done
    else
        echo "==> skipping multi-GPU MNIST: no MNIST files at ${data}"
    fi
else
    echo "==> one GPU (${gpus}): multi-device training needs two or more"
fi

exit "${failed}"
