//! The paper's seed format, bit-exact (docs/math.md §1–§7): `hi[31:0]` are 32 CORDIC
//! direction bits (the first 8 also the 2-bit states the transitions move), `lo` holds `r`
//! and `theta` as f32.
//!
//! - [`SeedFields`]: the fields of a paper seed, and its accessors on [`crate::Packed128`].
//! - [`reference`](mod@reference): the f64 oracle (CORDIC loop, closed form, layer, transitions, encoder).
//! - `cpu` (feature `cpu`): the closed-form forward and backward on f32 slices.
//! - `kernels` (feature `kernels`): the CubeCL kernels.

pub mod reference;
mod seed;

#[cfg(feature = "cpu")]
pub mod cpu;
#[cfg(feature = "kernels")]
pub mod kernels;

pub use seed::SeedFields;
