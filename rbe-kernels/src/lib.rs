//! Seeds, seed formats and kernels for Riemannian Basis Encoding (RBE), without Burn.
//!
//! The mathematics is written out in the repository's `docs/math.md`; each item here names
//! the section (`§N`) it implements. `docs/architecture.md` maps the whole tree.
//!
//! - Core, shared by every format: [`Packed128`] (one 128-bit seed per weight block, its
//!   bytes and serde form), [`BlockLayout`] (how a `[d_output, d_input]` weight is tiled into
//!   seeds), [`Grads`] (what every backward returns), [`DecodeCache`] (a layer's decoded
//!   seeds) and [`KernelError`].
//! - [`formats`]: one folder per seed format, each with its f64 reference oracle, its native
//!   CPU kernels (feature `cpu`) and its CubeCL kernels (feature `kernels`).
//! - `cpu` (feature `cpu`): the strided f32 GEMM helpers the CPU kernels share.
//! - `cube` (feature `kernels`): launch helpers and the `#[cube]` building blocks the CubeCL
//!   kernels share.
//! - `testing` (feature `testing`): random seeds, shapes and error measures for tests.
#![warn(missing_docs)]

mod decode_cache;
mod error;
pub mod formats;
mod grads;
mod layout;
mod packed128;

#[cfg(feature = "cpu")]
pub mod cpu;
#[cfg(feature = "kernels")]
pub mod cube;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use decode_cache::DecodeCache;
pub use error::KernelError;
pub use grads::Grads;
pub use layout::BlockLayout;
pub use packed128::Packed128;
