//! The paper's training step for fitting stored seeds to a target matrix (docs/math.md §5,
//! §6), built on the f64 reference.

use rbe::rbe_kernels::formats::paper::reference::{
    RADIUS_RANGE, SeedParams, amplitude, amplitude_derivative, apply_transition_counts, phase, psi,
    transition_counts,
};
use rbe::rbe_kernels::{BlockLayout, KernelError, Packed128};

/// What one [`fit_step`] step saw and did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitStep {
    /// Mean squared error of the generated weights against the target, before the update.
    pub mse: f64,
    /// How many 2-bit slot states changed.
    pub slots_changed: usize,
}

/// The paper's training step (section 5.2) for fitting seeds to a target matrix.
///
/// For every weight the error `e = w - target` is the signal. Per seed it
/// - accumulates `dL/dr = e * dw/dr` and `dL/dtheta = e * dw/dtheta`,
/// - counts state transitions from `e` when `threshold` is `Some`,
/// - then sets `r <- clamp(r - lr * mean(dL/dr), 0.1, 2.0)`,
///   `theta <- theta - lr * mean(dL/dtheta)` and moves the slot states.
///
/// All signals are taken from the seed as it was at the start of the step (the transitions
/// commute, docs/math.md §5), so the result does not depend on the visiting order. The
/// weights come from the exact closed form, which is what makes the step "fast".
///
/// # Shapes
/// - `target`: `[layout.rows * layout.cols]`, row-major.
pub fn fit_step(
    seeds: &mut [Packed128],
    layout: &BlockLayout,
    target: &[f64],
    lr: f64,
    threshold: Option<f64>,
) -> Result<FitStep, KernelError> {
    KernelError::check_len("seeds", seeds.len(), layout.num_blocks())?;
    KernelError::check_len("target", target.len(), layout.rows * layout.cols)?;
    let (br, bc) = (layout.block_rows, layout.block_cols);
    let mut sq_err = 0.0;
    let mut slots_changed = 0;
    for (s, seed) in seeds.iter_mut().enumerate() {
        let p = SeedParams::from(*seed);
        let (amp, amp_d) = (amplitude(p.r), amplitude_derivative(p.r));
        let angle = p.theta + phase(p.rotations);
        let (row0, col0) = (
            (s / layout.col_blocks()) * br,
            (s % layout.col_blocks()) * bc,
        );
        // (error, cos(psi + angle), sin(psi + angle)) of an in-block position the matrix holds.
        let element = |i: usize, j: usize| -> Option<(f64, f64, f64)> {
            let (row, col) = (row0 + i, col0 + j);
            (row < layout.rows && col < layout.cols).then(|| {
                let t = psi(i, j, br, bc) + angle;
                let (sin_t, cos_t) = t.sin_cos();
                (amp * cos_t - target[row * layout.cols + col], cos_t, sin_t)
            })
        };
        let (mut g_r, mut g_theta, mut n) = (0.0, 0.0, 0usize);
        for i in 0..br {
            for j in 0..bc {
                if let Some((e, cos_t, sin_t)) = element(i, j) {
                    sq_err += e * e;
                    g_r += e * amp_d * cos_t;
                    g_theta -= e * amp * sin_t;
                    n += 1;
                }
            }
        }
        let counts = threshold
            .map(|t| transition_counts(br, bc, t, |i, j| element(i, j).map_or(0.0, |e| e.0)));
        let n = n as f64;
        let r = (p.r - lr * g_r / n).clamp(RADIUS_RANGE.0, RADIUS_RANGE.1);
        let theta = p.theta - lr * g_theta / n;
        seed.set_r(r as f32)?;
        seed.set_theta(theta as f32)?;
        if let Some(counts) = counts {
            let before = seed.hi;
            seed.hi = apply_transition_counts(seed.hi, counts);
            slots_changed += (0..4)
                .filter(|slot| (before ^ seed.hi) >> (2 * slot) & 3 != 0)
                .count();
        }
    }
    Ok(FitStep {
        mse: sq_err / (layout.rows * layout.cols) as f64,
        slots_changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbe::rbe_kernels::formats::paper::reference::{closed_form_weight, encode_block};

    #[test]
    fn fit_step_reduces_the_loss_without_transitions() {
        let layout = BlockLayout::square(8, 8, 8).unwrap();
        let target: Vec<f64> = (0..64).map(|k| (k / 8) as f64 / 7.0 * 0.3).collect();
        let mut seeds = vec![Packed128::new(0.5, 0.0).unwrap()];
        let first = fit_step(&mut seeds, &layout, &target, 0.5, None).unwrap();
        let mut last = first;
        for _ in 0..200 {
            last = fit_step(&mut seeds, &layout, &target, 0.5, None).unwrap();
        }
        // The least-squares optimum over (a, b) bounds what (r, theta) can reach.
        let best = encode_block(8, 8, 0, 2.0, |i, j| Some(target[i * 8 + j])).seed;
        let best_mse = (0..64)
            .map(|k| (closed_form_weight(best, k / 8, k % 8, 8, 8) - target[k]).powi(2))
            .sum::<f64>()
            / 64.0;
        assert!(last.mse < 0.75 * first.mse, "{} -> {}", first.mse, last.mse);
        assert!(
            last.mse >= best_mse - 1e-12 && last.mse < best_mse + 1e-3,
            "{} vs {best_mse}",
            last.mse
        );
        assert_eq!(last.slots_changed, 0);
    }

    #[test]
    fn fit_step_rejects_mismatched_buffers() {
        let layout = BlockLayout::square(8, 8, 4).unwrap();
        let mut seeds = vec![Packed128::default(); 3];
        assert!(fit_step(&mut seeds, &layout, &[0.0; 64], 0.1, None).is_err());
        assert!(BlockLayout::new(0, 4, 4, 4).is_err());
    }
}
