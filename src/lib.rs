//! `rbe`: Riemannian Basis Encoding for Burn.
//!
//! This crate re-exports [`rbe_burn`] (the module, the backend op and the encoder) and
//! [`rbe_cubecl`] (seeds, the f64 reference and the kernels), and hosts the examples,
//! integration tests and benches.
pub use rbe_burn::*;
pub use rbe_cubecl;
