//! The paper format's encoder: the closed-form least-squares fit of `r` and `theta` per
//! block (docs/math.md §7).

use rbe_kernels::formats::paper::reference::{
    SeedParams, amplitude, amplitude_inverse, decode_closed_form, encode_dense,
};
use rbe_kernels::{BlockLayout, Packed128};

use crate::RbeError;
use crate::formats::Encoded;

/// The paper format's fit: `r` and `theta` per block (docs/math.md §7) for the CORDIC bits
/// of the `drawn` seeds. Counts the amplitudes raised to the radius range's minimum or
/// capped at its maximum.
pub(super) fn fit(
    w: &[f64],
    layout: &BlockLayout,
    drawn: Vec<Packed128>,
    (radius_min, radius_max): (f64, f64),
) -> Result<Encoded, RbeError> {
    let rotations: Vec<u32> = drawn.iter().map(Packed128::cordic_rotations).collect();
    let (a_min, a_max) = (amplitude(radius_min), amplitude(radius_max));
    let mut at_min = 0;
    let mut at_max = 0;
    let mut seeds = Vec::with_capacity(drawn.len());
    let mut fitted = Vec::with_capacity(drawn.len());
    for (block, mut seed) in encode_dense(w, layout, &rotations, radius_max)?
        .into_iter()
        .zip(drawn)
    {
        let best = block.a.hypot(block.b);
        at_min += usize::from(best < a_min);
        at_max += usize::from(best > a_max);
        // Along the fitted phase the loss is a parabola in the amplitude, so the best
        // allowed amplitude is the clamp of the unconstrained one.
        let r =
            amplitude_inverse(best.clamp(a_min, a_max), radius_max).clamp(radius_min, radius_max);
        seed.set_r(r as f32)?;
        seed.set_theta(block.seed.theta as f32)?;
        fitted.push(SeedParams::from(seed));
        seeds.push(seed);
    }

    let generated = decode_closed_form(&fitted, layout)?;
    Ok(Encoded {
        seeds,
        generated,
        clamped_low: at_min,
        clamped_high: at_max,
    })
}
