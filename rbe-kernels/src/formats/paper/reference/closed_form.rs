use super::{CORDIC_GAIN, CORDIC_STEPS, SeedParams, TANH_EVERY, psi};

/// The CORDIC phase `c = sum_{k<20} s_k atan(2^-k)` of the direction bits (docs/math.md §3).
pub fn phase(rotations: u32) -> f64 {
    (0..CORDIC_STEPS)
        .map(|k| {
            let s = if (rotations >> k) & 1 == 1 { 1.0 } else { -1.0 };
            s * (-(k as f64)).exp2().atan()
        })
        .sum()
}

/// The CORDIC bits taken at once by a [`phase_table`] lookup: two tables cover the 20 steps.
pub const PHASE_TABLE_BITS: u32 = 10;
const _: () = assert!(CORDIC_STEPS == 2 * PHASE_TABLE_BITS);

/// The partial phases `sum_{k < 10} s_k atan(2^-(first + k))` for every pattern of ten
/// direction bits starting at step `first`, in f64, indexed by the pattern. The fast paths
/// look the phase `c` of docs/math.md §3 up as
/// `table(0)[bits & 1023] + table(10)[(bits >> 10) & 1023]` instead of summing 20 terms.
pub fn phase_table(first: u32) -> Vec<f64> {
    (0..1u32 << PHASE_TABLE_BITS)
        .map(|pattern| {
            (0..PHASE_TABLE_BITS)
                .map(|k| {
                    let step = (-f64::from(first + k)).exp2().atan();
                    if (pattern >> k) & 1 == 1 { step } else { -step }
                })
                .sum()
        })
        .collect()
}

/// The radius map of docs/math.md §3 with the stretches `sqrt(1 + 4^-k)` between two
/// squashes folded into one factor each: `A(r)` is `r`, then for each entry `g` of
/// `before_squash`, `tanh(g * .)`, and finally `* tail` (the stretches after the last squash
/// over the CORDIC gain). The fast paths evaluate `A` this way: five multiplies instead of
/// twenty.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedGains {
    /// The factor applied right before each `tanh`, in step order.
    pub before_squash: Vec<f64>,
    /// The stretches after the last `tanh`, divided by the CORDIC gain.
    pub tail: f64,
}

/// The [`FoldedGains`] of the radius map.
pub fn folded_gains() -> FoldedGains {
    let mut before_squash = Vec::new();
    let mut gain = 1.0f64;
    for k in 0..CORDIC_STEPS {
        gain *= (1.0 + (-2.0 * f64::from(k)).exp2()).sqrt();
        if k % TANH_EVERY == 0 {
            before_squash.push(gain);
            gain = 1.0;
        }
    }
    FoldedGains {
        before_squash,
        tail: gain / CORDIC_GAIN,
    }
}

/// `(F(r), F'(r))` for the radius map: each step scales by `sqrt(1 + 4^-k)` and every
/// fourth step applies `tanh`.
fn radius_map(r: f64) -> (f64, f64) {
    let mut rho = r;
    let mut slope = 1.0;
    for k in 0..CORDIC_STEPS {
        let gain = (1.0 + (-2.0 * k as f64).exp2()).sqrt();
        rho *= gain;
        slope *= gain;
        if k % TANH_EVERY == 0 {
            let t = rho.tanh();
            slope *= 1.0 - t * t;
            rho = t;
        }
    }
    (rho, slope)
}

/// The amplitude `A(r) = F(r) / 1.64676` of the closed form `w = A(r) cos(psi + theta + c)`.
/// Increasing and odd; `A(inf) = 0.3215`.
pub fn amplitude(r: f64) -> f64 {
    radius_map(r).0 / CORDIC_GAIN
}

/// `A'(r)`, the chain rule through the radius map.
pub fn amplitude_derivative(r: f64) -> f64 {
    radius_map(r).1 / CORDIC_GAIN
}

/// The radius whose amplitude is `target`, searched in `[0, r_max]` by bisection.
///
/// Targets at or above `A(r_max)` give `r_max`; targets at or below 0 give 0.
pub fn amplitude_inverse(target: f64, r_max: f64) -> f64 {
    if target <= 0.0 {
        return 0.0;
    }
    if target >= amplitude(r_max) {
        return r_max;
    }
    let (mut lo, mut hi) = (0.0, r_max);
    // 80 halvings take the bracket below f64 resolution for r_max <= 2^20.
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if amplitude(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The shared basis of a block shape: `(C, S) = (cos psi, sin psi)` at `(i, j)`.
pub fn basis(i: usize, j: usize, rows: usize, cols: usize) -> (f64, f64) {
    let p = psi(i, j, rows, cols);
    (p.cos(), p.sin())
}

/// The per-seed coefficients `(a, b)` with `w = a*C + b*S`:
/// `a = A(r) cos(theta + c)`, `b = -A(r) sin(theta + c)`.
pub fn coefficients(seed: SeedParams) -> (f64, f64) {
    let amp = amplitude(seed.r);
    let angle = seed.theta + phase(seed.rotations);
    (amp * angle.cos(), -amp * angle.sin())
}

/// The weight by the closed form `A(r) cos(psi + theta + c)`; equal to
/// [`super::cordic_weight`] up to rounding.
pub fn closed_form_weight(seed: SeedParams, i: usize, j: usize, rows: usize, cols: usize) -> f64 {
    amplitude(seed.r) * (psi(i, j, rows, cols) + seed.theta + phase(seed.rotations)).cos()
}

/// `dw/dr = A'(r) cos(psi + theta + c)` (docs/math.md §4).
pub fn weight_grad_r(seed: SeedParams, i: usize, j: usize, rows: usize, cols: usize) -> f64 {
    amplitude_derivative(seed.r)
        * (psi(i, j, rows, cols) + seed.theta + phase(seed.rotations)).cos()
}

/// `dw/dtheta = -A(r) sin(psi + theta + c)` (docs/math.md §4).
pub fn weight_grad_theta(seed: SeedParams, i: usize, j: usize, rows: usize, cols: usize) -> f64 {
    -amplitude(seed.r) * (psi(i, j, rows, cols) + seed.theta + phase(seed.rotations)).sin()
}
