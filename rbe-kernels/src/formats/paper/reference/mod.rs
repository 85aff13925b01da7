//! The f64 reference oracle for the mathematics of `docs/math.md`.
//!
//! Everything here is plain Rust in f64, written for clarity rather than speed. Kernels,
//! Burn ops and gradients are tested against it. It needs no GPU runtime.
//!
//! Seeds enter most functions as [`SeedParams`] so that finite-difference checks can perturb
//! `r` and `theta` in f64; `SeedParams::from(packed)` (defined beside `Packed128`) converts a stored seed.

mod closed_form;
mod cordic;
mod decode;
mod encode;
mod fused;
mod layer;
mod transitions;

pub use closed_form::{
    FoldedGains, PHASE_TABLE_BITS, amplitude, amplitude_derivative, amplitude_inverse, basis,
    closed_form_weight, coefficients, folded_gains, phase, phase_table, weight_grad_r,
    weight_grad_theta,
};
pub use cordic::{cordic_weight, normalized_coords, psi};
pub use decode::{decode_closed_form, decode_dense};
pub use encode::{EncodedBlock, encode_block, encode_dense};
pub use fused::fused_forward_precise;
pub use layer::{layer_backward, layer_forward};
pub use transitions::{
    apply_transition_counts, sequential_transitions, transition_counts, transition_slot,
};

/// CORDIC steps per weight (docs/math.md §2).
pub const CORDIC_STEPS: u32 = 20;
/// The radius is squashed by `tanh` after every step `k` with `k % TANH_EVERY == 0`.
pub const TANH_EVERY: u32 = 4;
/// The paper's CORDIC gain divisor.
pub const CORDIC_GAIN: f64 = 1.64676;
/// The paper's state-transition threshold (docs/math.md §5).
pub const TRANSITION_THRESHOLD: f64 = 0.1;
/// The paper's clamp on `r` after an update (docs/math.md §6).
pub const RADIUS_RANGE: (f64, f64) = (0.1, 2.0);

/// The continuous parameters and CORDIC bits of one seed, in f64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedParams {
    /// Radius.
    pub r: f64,
    /// Angle.
    pub theta: f64,
    /// CORDIC direction bits (`hi[31:0]`).
    pub rotations: u32,
}

#[cfg(test)]
mod tests;
