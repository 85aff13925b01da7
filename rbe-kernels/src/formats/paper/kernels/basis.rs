//! The shared block basis `(C, S) = (cos psi, sin psi)` evaluated in a kernel.

use cubecl::prelude::*;

/// `2 k / (n - 1) - 1`, or 0 for a one-wide axis (docs/math.md §2).
#[cube]
pub fn normalized<F: Float>(k: u32, n: u32) -> F {
    let mut v = F::new(0.0);
    if n > 1 {
        v = F::cast_from(k) / F::cast_from(n - 1) * F::new(2.0) - F::new(1.0);
    }
    v
}

/// `cos psi(i, j)` of a `br x bc` block; `psi = atan2(y, x)` is 0 at the centre.
///
/// The unit vector `(x, y) / |(x, y)|` gives cos and sin of the polar angle without any
/// trigonometry.
#[cube]
pub fn basis_cos<F: Float>(i: u32, j: u32, br: u32, bc: u32) -> F {
    let x = normalized::<F>(j, bc);
    let y = normalized::<F>(i, br);
    let norm = F::sqrt(x * x + y * y);
    let mut c = F::new(1.0);
    if norm > F::new(0.0) {
        c = x / norm;
    }
    c
}

/// `sin psi(i, j)` of a `br x bc` block.
#[cube]
pub fn basis_sin<F: Float>(i: u32, j: u32, br: u32, bc: u32) -> F {
    let x = normalized::<F>(j, bc);
    let y = normalized::<F>(i, br);
    let norm = F::sqrt(x * x + y * y);
    let mut s = F::new(0.0);
    if norm > F::new(0.0) {
        s = y / norm;
    }
    s
}
