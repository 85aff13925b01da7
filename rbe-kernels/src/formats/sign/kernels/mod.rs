//! The sign blueprint's CubeCL kernels and their launchers (feature `kernels`,
//! docs/math.md §9): [`forward`] (a one-thread-per-output matvec for small batches, else the
//! shared tiled matmul of `crate::cube` with the sign weight of `weight.rs` plugged in) and
//! [`backward`] (the seed gradients and cell signal in one launch, `dL/dx` by the tiled
//! matmul transposed).

mod backward;
mod forward;
mod latent_bits;
mod weight;

pub use backward::backward;
pub use forward::forward;
pub use latent_bits::latent_bits;

#[cfg(all(test, feature = "wgpu"))]
mod tests;
