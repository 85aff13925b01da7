#!/usr/bin/env bash
# MNIST on one device against two (Burn's multi-device strategy, and --ddp with a replica per
# device), for every seed format and bit rule, at the same global batch: one device with
# batch 64, two with 32 each. Writes the JSON lines to benches/results/multi_device_mnist.jsonl
# and the table to benches/results/multi_device_mnist.md.
#
# Usage: scripts/multi_device_table.sh                (Flex, 2 epochs; minutes on 2 cores)
#        BACKEND=wgpu EPOCHS=5 scripts/multi_device_table.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BACKEND=${BACKEND:-flex}
EPOCHS=${EPOCHS:-2}
OUT=benches/results/multi_device_mnist
cargo build --release --example mnist
work=$(mktemp -d)
: >"${OUT}.jsonl"

run() {
    local format=$1
    shift
    for placement in "--devices 1 --batch-size 64" "--devices 2 --batch-size 32" \
        "--devices 2 --batch-size 32 --ddp"; do
        # shellcheck disable=SC2086
        target/release/examples/mnist --backend "${BACKEND}" --epochs "${EPOCHS}" \
            ${format} "$@" ${placement} --artifact-dir "${work}/run" 2>/dev/null |
            tail -n 1 >>"${OUT}.jsonl"
    done
}

run "--format paper"
run "--format paper" --no-transitions
run "--format sign" --bit-training ste
run "--format sign" --bit-training flip
run "--format ternary" --bit-training ste

python3 - "${OUT}" "${BACKEND}" "${EPOCHS}" <<'EOF'
import json, platform, sys
out, backend, epochs = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(line) for line in open(out + ".jsonl")]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
lines = [
    f"MNIST 784-256-10, RBE 8x8 blocks, {epochs} epochs, Adam lr 1e-3, seed 42, on {backend} "
    f"({cpu}); one device at batch 64 against two at 32 each (the same 64 images per step). "
    "Written by `scripts/multi_device_table.sh`.",
    "",
    "| format | bits | devices | mode | test accuracy | vs 1 device | s/epoch |",
    "|---|---|---:|---|---:|---:|---:|",
]
single = {}
for r in rows:
    bits = r["bit_training"] or ("transitions" if r["transitions"] else "frozen")
    key = (r["format"], bits)
    mode = "single" if r["devices"] == 1 else ("ddp" if r["ddp"] else "multi")
    if r["devices"] == 1:
        single[key] = r["test_accuracy"]
    delta = (r["test_accuracy"] - single[key]) * 100 if key in single and r["devices"] > 1 else None
    lines.append(
        f"| {r['format']} | {bits} | {r['devices']} | {mode} | {100 * r['test_accuracy']:.2f} % | "
        + (f"{delta:+.2f} points" if delta is not None else "-")
        + f" | {r['seconds_per_epoch']:.1f} |"
    )
open(out + ".md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
rm -rf "${work}"
