//! RBE's compute bound: its multiply-adds at the rate the same backend's dense GEMM reaches
//! in the same run.
//!
//! Per input row, the closed-form forward (docs/math.md §3) projects each of the `nJ`
//! column blocks of `x` (width `bc`) onto the two fixed `br x bc` matrices `C` and `S`
//! (`2·br·nJ·bc` multiply-adds), then combines the projections with every seed's `(a, b)`
//! (`2·nI·nJ·br`). For square `B x B` blocks that is `2·B·d_in + 2·d_out·d_in/B`, against
//! `d_out·d_in` for a dense product. Padding of partial blocks is counted, as the kernels
//! compute it.

use rbe::BlockLayout;

use super::schema::{ComputeBound, Record};

/// Multiply-adds of one dense call: `batch·d_input·d_output`.
pub fn dense_macs(batch: usize, d_input: usize, d_output: usize) -> f64 {
    batch as f64 * d_input as f64 * d_output as f64
}

/// Multiply-adds of one closed-form RBE forward over `batch` rows.
pub fn rbe_macs(layout: &BlockLayout, batch: usize) -> f64 {
    let (br, bc) = (layout.block_rows as f64, layout.block_cols as f64);
    let (n_i, n_j) = (layout.row_blocks() as f64, layout.col_blocks() as f64);
    let per_row = 2.0 * br * (n_j * bc) + 2.0 * n_i * n_j * br;
    batch as f64 * per_row
}

/// The best dense multiply-add rate among `records` and the case it came from.
pub fn best_dense_rate(records: &[Record]) -> Option<(f64, String)> {
    records
        .iter()
        .filter(|r| r.variant == "dense" && r.median_ns > 0.0)
        .filter_map(|r| Some((r.macs? / (r.median_ns * 1e-9), r.case.clone())))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// Sets `compute_bound` on every RBE record with a multiply-add count, from the best dense
/// rate among `records` (one run, one backend). Returns that rate, if any dense case ran.
pub fn apply(records: &mut [Record]) -> Option<(f64, String)> {
    let (rate, case) = best_dense_rate(records)?;
    for r in records.iter_mut().filter(|r| r.variant.starts_with("rbe-")) {
        let Some(macs) = r.macs else { continue };
        let bound_ns = macs / rate * 1e9;
        r.compute_bound = Some(ComputeBound {
            dense_macs_per_second: rate,
            dense_rate_case: case.clone(),
            bound_ns,
            ratio: r.median_ns / bound_ns,
        });
    }
    Some((rate, case))
}
