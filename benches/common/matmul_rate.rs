//! The best multiply-add rate the backend's own dense matmul reaches on a large square
//! product: what a compute-bound figure is measured against when no dense case of the
//! same shape is in the run.

use burn::tensor::{Distribution, Tensor};

use super::backends::{BenchBackend, sync};

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
