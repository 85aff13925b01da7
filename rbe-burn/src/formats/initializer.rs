//! How a fresh layer draws its seeds; each format reads the variants in its own terms.

use burn::config::Config;

/// How a fresh [`crate::RbeLinear`] draws its seeds. Random draws use the backend's RNG, so
/// `B::seed(&device, s)` makes them reproducible.
///
/// For the sign blueprint ([`crate::SignFormat`]) the same variants mean:
/// `FanIn`: `mu = 0`, `alpha = gain / sqrt(fan_in)` (the weights' standard deviation, as
/// for the paper's format) and random bits; `Constant`: `alpha = |r|`, `mu = theta` and the
/// low 32 bits of `hi` set to `rotations`.
#[derive(Config, Debug, PartialEq)]
pub enum RbeInitializer {
    /// Every block gets the amplitude whose weights have standard deviation
    /// `gain / sqrt(fan_in)` (a block's weights `A cos(psi + phi)` have RMS `A / sqrt(2)`),
    /// clamped into the amplitudes the radius range allows. `theta` is uniform in
    /// `[-pi, pi)` and all 32 CORDIC bits are random.
    ///
    /// With the paper's range `r >= 0.1` the smallest amplitude is `A(0.1) = 0.096`, i.e. a
    /// weight RMS of 0.068: wide layers start larger than a dense layer would.
    FanIn {
        /// Scale relative to `1 / sqrt(fan_in)`; `1/sqrt(3)` matches Burn's `Linear` default.
        gain: f64,
    },
    /// Every seed gets this `r` and `theta` and these CORDIC bits.
    Constant {
        /// `r`, clamped into the layer's radius range like every update.
        r: f64,
        /// `theta` in radians.
        theta: f64,
        /// `hi[31:0]`: bit `k` is the direction of CORDIC step `k` (docs/math.md §1).
        rotations: u32,
    },
}
