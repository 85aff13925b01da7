//! The sign blueprint's fresh seeds.

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use rbe_kernels::formats::sign::{SignBlueprint, valid_mask};
use rbe_kernels::{BlockLayout, Packed128};

use crate::RbeError;
use crate::formats::RbeInitializer;

/// Draws the sign-blueprint seeds of `layout` for a layer with `fan_in` inputs. Bits of
/// cells outside the matrix stay zero, as the encoder leaves them.
pub(crate) fn seeds<B: Backend>(
    init: &RbeInitializer,
    layout: &BlockLayout,
    fan_in: usize,
    device: &B::Device,
) -> Result<Vec<Packed128>, RbeError> {
    let n = layout.num_blocks();
    match *init {
        RbeInitializer::Constant {
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
        RbeInitializer::FanIn { gain } => {
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
