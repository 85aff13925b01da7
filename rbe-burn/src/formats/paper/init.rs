//! The paper format's fresh seeds.

use std::f64::consts::PI;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use rbe_kernels::Packed128;
use rbe_kernels::formats::paper::SeedFields;
use rbe_kernels::formats::paper::reference::{amplitude, amplitude_inverse};

use crate::RbeError;
use crate::formats::RbeInitializer;

/// Draws `n` seeds for a layer with `fan_in` inputs, `r` within `radius_range`.
pub(crate) fn seeds<B: Backend>(
    init: &RbeInitializer,
    n: usize,
    fan_in: usize,
    radius_range: (f64, f64),
    device: &B::Device,
) -> Result<Vec<Packed128>, RbeError> {
    match *init {
        RbeInitializer::Constant {
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
        RbeInitializer::FanIn { gain } => {
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
