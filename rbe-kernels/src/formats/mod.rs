//! The seed formats: what the 128 bits of a [`crate::Packed128`] mean. One folder each,
//! holding the format's seed fields, its f64 reference, its encoder, its bit-training rule,
//! its native CPU kernels (`cpu`, feature `cpu`) and its CubeCL kernels (`kernels`, feature
//! `kernels`).
//!
//! | format | folder | weight of cell `(i, j)` |
//! |---|---|---|
//! | the paper's CORDIC seed | [`paper`] | `A(r) cos(psi(i, j) + theta + c(bits))` (docs/math.md §1–§7) |
//! | the sign blueprint | [`sign`] | `mu + alpha (2 bit_ij - 1)` (docs/math.md §9) |
//! | the ternary seed | [`ternary`] | `alpha t_ij`, `t_ij ∈ {-1, 0, 1}` (docs/math.md §10) |

pub mod paper;
pub mod sign;
pub mod ternary;
