//! [`StorageReport`]: every byte an RBE layer stores.

use rbe_kernels::BlockLayout;

/// Bytes per stored float (the full-precision recorders store f32).
const FLOAT_BYTES: usize = 4;
/// Bytes per seed: two f32 and `hi` (two i32), in every format.
pub const SEED_BYTES: usize = 16;

/// Every byte an [`RbeLinear`] stores, against the dense `Linear` it replaces.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StorageReport {
    /// `16 * n_blocks`; covers the cropped parts of edge blocks too.
    pub seed_bytes: usize,
    /// `4 * rank * (d_input + d_output)`.
    pub residual_bytes: usize,
    /// `4 * d_output` with a bias, else 0.
    pub bias_bytes: usize,
    /// `seed_bytes + residual_bytes + bias_bytes`: what a recorder stores at full precision.
    pub total_bytes: usize,
    /// What a dense `Linear` with the same bias setting stores.
    pub dense_bytes: usize,
}

impl StorageReport {
    /// Every byte a layer of `layout` with a residual of `residual_rank` and an optional bias
    /// stores, against the dense `Linear` it replaces.
    pub fn of(layout: BlockLayout, residual_rank: usize, bias: bool) -> Self {
        let (d_in, d_out) = (layout.cols, layout.rows);
        let seed_bytes = SEED_BYTES * layout.num_blocks();
        let residual_bytes = FLOAT_BYTES * residual_rank * (d_in + d_out);
        let bias_bytes = if bias { FLOAT_BYTES * d_out } else { 0 };
        Self {
            seed_bytes,
            residual_bytes,
            bias_bytes,
            total_bytes: seed_bytes + residual_bytes + bias_bytes,
            dense_bytes: FLOAT_BYTES * d_out * d_in + bias_bytes,
        }
    }

    /// `dense_bytes / total_bytes`.
    pub fn compression_ratio(&self) -> f64 {
        self.dense_bytes as f64 / self.total_bytes as f64
    }
}
