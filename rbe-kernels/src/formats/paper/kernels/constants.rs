//! The CORDIC constants as one comptime value, so every kernel takes them from
//! [`crate::formats::paper::reference`] instead of repeating literals (docs/math.md §2, §3).

use crate::formats::paper::reference::{CORDIC_GAIN, CORDIC_STEPS, TANH_EVERY};

/// The CORDIC schedule a kernel is compiled for. Passed as a `#[comptime]` argument: the
/// step count and the squash period are compile-time constants, and the per-step angles and
/// step sizes become literals computed in f64 on the host and rounded once.
///
/// The gain is kept as f64 bits because comptime values must be `Eq + Hash` (they key the
/// kernel cache).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Cordic {
    /// Steps per weight.
    pub steps: u32,
    /// `tanh` after every step `k` with `k % tanh_every == 0`.
    pub tanh_every: u32,
    gain_bits: u64,
}

impl Cordic {
    /// The paper's schedule, [`crate::formats::paper::reference`]'s constants.
    pub const PAPER: Self = Self {
        steps: CORDIC_STEPS,
        tanh_every: TANH_EVERY,
        gain_bits: CORDIC_GAIN.to_bits(),
    };

    /// The gain divisor, rounded to f32.
    pub fn gain(&self) -> f32 {
        f64::from_bits(self.gain_bits) as f32
    }

    /// `2^-k`, the rotation step of step `k` (exact in f32 for the steps used).
    pub fn step(k: u32) -> f32 {
        (-f64::from(k)).exp2() as f32
    }

    /// `atan(2^-k)`, the rotation angle of step `k`, rounded to f32.
    pub fn angle(k: u32) -> f32 {
        (-f64::from(k)).exp2().atan() as f32
    }

    /// Whether step `k` squashes the radius.
    pub fn squashes(&self, k: u32) -> bool {
        k.is_multiple_of(self.tanh_every)
    }
}
