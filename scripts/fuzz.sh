#!/usr/bin/env bash
# A long fuzz campaign over record decoding and Packed128's byte and serde forms
# (rbe-burn/src/tests/fuzz.rs). CI runs the same tests with the default, small case count.
# Usage: scripts/fuzz.sh [cases per target, default 30000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RBE_FUZZ_CASES="${1:-30000}" cargo test -p rbe-burn --lib tests::fuzz -- --nocapture 2>&1 |
    grep -vE 'panicked at|^note: run with' | grep -E 'loaded|^test |test result'
