//! Initial seeds.

use std::f64::consts::PI;

use burn::config::Config;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use rbe_cubecl::reference::{amplitude, amplitude_inverse};
use rbe_cubecl::sign_blueprint::{SignBlueprint, valid_mask};
use rbe_cubecl::{BlockLayout, Packed128, SeedFields};

use crate::RbeError;

/// How a fresh [`crate::RbeLinear`] draws its seeds. Random draws use the backend's RNG, so
/// `B::seed(&device, s)` makes them reproducible.
///
/// For the sign blueprint ([`crate::SeedFormat::SignBlueprint`]) the same variants mean:
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

impl RbeInitializer {
    /// Draws `n` seeds for a layer with `fan_in` inputs.
    pub(crate) fn seeds<B: Backend>(
        &self,
        n: usize,
        fan_in: usize,
        radius_range: (f64, f64),
        device: &B::Device,
    ) -> Result<Vec<Packed128>, RbeError> {
        match *self {
            Self::Constant {
                r,
                theta,
                rotations,
            } => {
                let seed = Packed128::from_fields(SeedFields {
                    r: r as f32,
                    theta: theta as f32,
                    cordic_rotations: rotations,
                    ..Default::default()
                })?;
                Ok(vec![seed; n])
            }
            Self::FanIn { gain } => {
                let target = (gain * (2.0 / fan_in as f64).sqrt())
                    .clamp(amplitude(radius_range.0), amplitude(radius_range.1));
                let r = amplitude_inverse(target, radius_range.1).max(radius_range.0);
                // Column 0 draws theta, columns 1 and 2 the two 16-bit halves of the bits.
                let draws = Tensor::<B, 2>::random([n, 3], Distribution::Default, device)
                    .into_data()
                    .convert::<f32>();
                let draws = draws.as_slice::<f32>().map_err(RbeError::data)?;
                draws
                    .chunks_exact(3)
                    .map(|u| {
                        let half = |v: f32| ((v * 65536.0) as u32).min(0xFFFF);
                        let seed = Packed128::from_fields(SeedFields {
                            r: r as f32,
                            theta: ((f64::from(u[0]) * 2.0 - 1.0) * PI) as f32,
                            cordic_rotations: (half(u[1]) << 16) | half(u[2]),
                            ..Default::default()
                        })?;
                        Ok(seed)
                    })
                    .collect()
            }
        }
    }

    /// Draws the sign-blueprint seeds of `layout` for a layer with `fan_in` inputs. Bits of
    /// cells outside the matrix stay zero, as the encoder leaves them.
    pub(crate) fn sign_seeds<B: Backend>(
        &self,
        layout: &BlockLayout,
        fan_in: usize,
        device: &B::Device,
    ) -> Result<Vec<Packed128>, RbeError> {
        let n = layout.num_blocks();
        match *self {
            Self::Constant {
                r,
                theta,
                rotations,
            } => (0..n)
                .map(|s| {
                    let bits = u64::from(rotations) & valid_mask(layout, s);
                    Ok(Packed128::from_sign_parts(
                        bits,
                        r.abs() as f32,
                        theta as f32,
                    )?)
                })
                .collect(),
            Self::FanIn { gain } => {
                let alpha = (gain / (fan_in as f64).sqrt()) as f32;
                // Four 16-bit draws per seed make its 64 bits.
                let draws = Tensor::<B, 2>::random([n, 4], Distribution::Default, device)
                    .into_data()
                    .convert::<f32>();
                let draws = draws.as_slice::<f32>().map_err(RbeError::data)?;
                draws
                    .chunks_exact(4)
                    .enumerate()
                    .map(|(s, u)| {
                        let bits = u.iter().fold(0u64, |acc, &v| {
                            (acc << 16) | u64::from(((v * 65536.0) as u32).min(0xFFFF))
                        });
                        Ok(Packed128::from_sign_parts(
                            bits & valid_mask(layout, s),
                            alpha,
                            0.0,
                        )?)
                    })
                    .collect()
            }
        }
    }
}
