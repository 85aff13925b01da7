#!/usr/bin/env bash
# Produces the README's transformer table: a character-level GPT trained with dense
# projections and with RbeLinear projections (blocks of 16 and 32, residual rank 0 and 8),
# all with the same architecture, steps, batches, learning rate and seed. Writes
# benches/results/transformer_table.md (override with OUT=...).
#
# Sizes: 2 layers, d_model 128, 4 heads, context 64, batch 32, 2000 steps. The larger
# 4 layers / d_model 256 / context 128 trained at about 1,000 tokens/s dense and
# 480 tokens/s RBE (B=32) on the 2-core CPU this was written on (NdArray, release build),
# i.e. 2 to 5 hours per 2000-step run; at these sizes the five runs take 1.5 to 2 hours
# there. Extra flags override the sizes, e.g. `scripts/transformer_table.sh --steps 500`.
#
# The backend defaults to Flex, Burn 0.21's recommended CPU backend. The committed table was
# produced with NdArray (legacy): `BACKEND=ndarray scripts/transformer_table.sh` reproduces it.
#
# Usage: scripts/transformer_table.sh [extra transformer flags]
#        BACKEND=wgpu scripts/transformer_table.sh
#        BACKEND=ndarray scripts/transformer_table.sh   (legacy CPU backend)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BACKEND=${BACKEND:-flex}
OUT=${OUT:-benches/results/transformer_table.md}
export CARGO_INCREMENTAL=0

cargo build --release --example transformer
exec target/release/examples/transformer \
    --table "${OUT}" \
    --backend "${BACKEND}" \
    --layers 2 --d-model 128 --heads 4 --context 64 \
    --batch-size 32 --steps 2000 --lr 0.003 --seed 42 \
    "$@"
