//! The ternary format's CubeCL kernels and their launchers (feature `kernels`,
//! docs/math.md §10): [`forward`] (a one-thread-per-output matvec for small batches, else
//! the shared tiled matmul of `crate::cube` with the ternary weight plugged in) and
//! [`backward`] (`dL/dalpha` and the cell signal in one launch, `dL/dx` by the tiled matmul
//! transposed). Every weight is decoded in registers from its 2-bit code by a shift and a
//! mask; no weight-sized buffer is written.

mod backward;
mod forward;
mod latent_bits;

pub use backward::backward;
pub use forward::forward;
pub use latent_bits::latent_bits;

#[cfg(all(test, feature = "wgpu"))]
mod tests;
