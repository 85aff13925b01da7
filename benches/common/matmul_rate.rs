//! The best multiply-add rate the backend's own dense matmul reaches on a large square
//! product: what a compute-bound figure is measured against when no dense case of the
//! same shape is in the run.

use burn::tensor::{Distribution, Tensor};

use super::backends::{BenchBackend, sync};
use super::schema::ComputeBound;

/// Side of the product: `[n, n] x [n, n]`.
pub const SIDE: usize = 1024;

/// Calls timed; the fastest counts (the first pays for allocation and thread start-up).
const CALLS: usize = 6;

/// The best multiply-adds per second of a [`SIDE`]³ matmul on `B`.
pub fn best<B: BenchBackend>(device: &B::Device) -> f64 {
    let a = Tensor::<B, 2>::random([SIDE, SIDE], Distribution::Default, device);
    let b = Tensor::<B, 2>::random([SIDE, SIDE], Distribution::Default, device);
    let macs = (SIDE * SIDE * SIDE) as f64;
    (0..CALLS)
        .map(|_| {
            sync::<B>(device);
            let start = std::time::Instant::now();
            let c = a.clone().matmul(b.clone());
            sync::<B>(device);
            let rate = macs / start.elapsed().as_secs_f64();
            drop(c);
            rate
        })
        .fold(0.0, f64::max)
}

/// The compute bound of a call of `macs` multiply-adds that took `median_ns`, at `rate`
/// (what [`best`] measured in the same run).
pub fn bound(macs: f64, rate: f64, median_ns: f64) -> ComputeBound {
    let bound_ns = macs / rate * 1e9;
    ComputeBound {
        dense_macs_per_second: rate,
        dense_rate_case: format!("matmul {SIDE}x{SIDE}x{SIDE}"),
        bound_ns,
        ratio: median_ns / bound_ns,
    }
}
