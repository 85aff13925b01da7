//! The ternary format's fresh seeds.

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use rbe_kernels::formats::sign::valid_mask;
use rbe_kernels::formats::ternary::{TERNARY_CELLS, pack, round_alpha};
use rbe_kernels::{BlockLayout, Packed128};

use crate::RbeError;
use crate::formats::RbeInitializer;

/// Draws the ternary seeds of `layout` for a layer with `fan_in` inputs. Cells outside the
/// matrix are 0, as the encoder leaves them.
///
/// - `FanIn { gain }`: every cell's level uniform over {-1, 0, +1} (so P(0) = 1/3) and
///   `alpha = gain * sqrt(3/2) / sqrt(fan_in)`, which gives the weights the standard
///   deviation `gain / sqrt(fan_in)` (a level is non-zero with probability 2/3), rounded to
///   f16;
/// - `Constant { r, rotations, .. }`: `alpha = |r|` rounded to f16, cell `k < 32` at +1
///   where bit `k` of `rotations` is set, every other cell 0 (`theta` has no slot).
pub(crate) fn seeds<B: Backend>(
    init: &RbeInitializer,
    layout: &BlockLayout,
    fan_in: usize,
    device: &B::Device,
) -> Result<Vec<Packed128>, RbeError> {
    let n = layout.num_blocks();
    let inside = |s: usize, k: usize| valid_mask(layout, s) >> k & 1 == 1;
    match *init {
        RbeInitializer::Constant { r, rotations, .. } => (0..n)
            .map(|s| {
                let mut codes = [0u8; TERNARY_CELLS];
                for (k, code) in codes.iter_mut().enumerate().take(32) {
                    *code = u8::from(rotations >> k & 1 == 1 && inside(s, k));
                }
                Ok(pack(&codes, round_alpha(r.abs() as f32))?)
            })
            .collect(),
        RbeInitializer::FanIn { gain } => {
            let alpha = round_alpha((gain * 1.5f64.sqrt() / (fan_in as f64).sqrt()) as f32);
            let draws = Tensor::<B, 2>::random([n, TERNARY_CELLS], Distribution::Default, device)
                .into_data()
                .convert::<f32>();
            let draws = draws.as_slice::<f32>().map_err(RbeError::data)?;
            draws
                .chunks_exact(TERNARY_CELLS)
                .enumerate()
                .map(|(s, u)| {
                    let mut codes = [0u8; TERNARY_CELLS];
                    for (k, (code, &v)) in codes.iter_mut().zip(u).enumerate() {
                        if inside(s, k) {
                            *code = ((v * 3.0) as u8).min(2);
                        }
                    }
                    Ok(pack(&codes, alpha)?)
                })
                .collect()
        }
    }
}
