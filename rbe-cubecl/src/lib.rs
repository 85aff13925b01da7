//! Seeds, reference mathematics and CubeCL kernels for Riemannian Basis Encoding (RBE).
//!
//! The mathematics is written out in the repository's `docs/math.md`; each item here names
//! the section (`§N`) it implements.
//!
//! - [`Packed128`]: one 128-bit seed per weight block, with its bit fields, validation,
//!   serde and a 16-byte little-endian form.
//! - [`BlockLayout`]: how a `[d_output, d_input]` weight matrix is tiled into seeds.
//! - [`reference`](mod@reference): the f64 oracle every kernel and gradient is tested against. It needs no
//!   GPU runtime and builds with `default-features = false`.
//! - `kernels` (feature `kernels`): the CubeCL kernels and their launchers.
//! - `cpu` (feature `cpu`): native CPU kernels on f32 slices (rayon + `gemm`), which Burn's
//!   CPU backends run.
#![warn(missing_docs)]

mod error;
mod fit_step;
mod layout;
mod packed128;
pub mod reference;
pub mod sign_blueprint;

#[cfg(feature = "cpu")]
pub mod cpu;
#[cfg(feature = "kernels")]
pub mod kernels;

pub use error::RbeError;
pub use fit_step::{FitStep, fused_backward_fast};
pub use layout::BlockLayout;
pub use packed128::{Packed128, SeedFields};
