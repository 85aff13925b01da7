//! The CPU kernels against the f64 reference on random seeds and the shapes of
//! [`crate::testing::cases`]: odd sizes, 1×N and N×1 matrices, cropped edge blocks,
//! rectangular blocks, blocks larger than the matrix, batch 1 to 40 (below and above the
//! thread count, where the kernels split their work differently).

use rand::Rng;

use super::coefficients::Kernel;
use super::*;
use crate::formats::paper::reference;
use crate::testing::{Blocks, PaperSeeds, assert_close, cases, grid_values, rng};
use crate::{BlockLayout, DecodeCache};

const TOLERANCE: f64 = 1e-5;
const THRESHOLD: f32 = 0.1;
/// Random batches reach past the thread count, where the kernels split their work
/// differently.
const MAX_BATCH: usize = 40;

#[test]
fn coefficients_match_reference() {
    let mut rng = rng(1);
    let seeds = PaperSeeds::random(&mut rng, 5000);
    let c = Coefficients::decode(&seeds.coords, &seeds.bits).unwrap();
    assert_eq!(c.len(), 5000);
    for (s, p) in seeds.params.iter().enumerate() {
        let (a, b) = reference::coefficients(*p);
        let angle = p.theta + reference::phase(p.rotations);
        let amp_d = reference::amplitude_derivative(p.r);
        let want = [a, b, amp_d * angle.cos(), -amp_d * angle.sin()];
        let got = [
            c.ab()[2 * s],
            c.ab()[2 * s + 1],
            c.ab_dr()[2 * s],
            c.ab_dr()[2 * s + 1],
        ];
        for (g, w) in got.iter().zip(want) {
            assert!(
                (f64::from(*g) - w).abs() < 2e-6,
                "seed {s}: {got:?} vs {want:?}"
            );
        }
    }
}

#[test]
fn forward_matches_reference() {
    let mut rng = rng(2);
    for (layout, batch) in cases(&mut rng, Blocks::Any, 46, MAX_BATCH) {
        let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
        let (x, x64) = grid_values(&mut rng, batch * layout.cols);
        let mut y = vec![f32::NAN; batch * layout.rows];
        forward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            batch,
            &mut y,
            &DecodeCache::default(),
        )
        .unwrap();
        let want = reference::layer_forward(&seeds.params, &layout, &x64, batch).unwrap();
        assert_close(&y, &want, TOLERANCE, &format!("{layout} batch {batch}"));
    }
}

#[test]
fn forward_on_continuous_inputs() {
    let mut rng = rng(3);
    for (layout, batch) in cases(&mut rng, Blocks::Any, 6, MAX_BATCH) {
        let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
        // Off the grid and past [-1, 1).
        let x: Vec<f32> = (0..batch * layout.cols)
            .map(|_| rng.random_range(-3.0..3.0))
            .collect();
        let x64: Vec<f64> = x.iter().map(|&v| v.into()).collect();
        let mut y = vec![0.0; batch * layout.rows];
        forward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            batch,
            &mut y,
            &DecodeCache::default(),
        )
        .unwrap();
        let want = reference::layer_forward(&seeds.params, &layout, &x64, batch).unwrap();
        assert_close(&y, &want, TOLERANCE, &format!("{layout} batch {batch}"));
    }
}

#[test]
fn backward_matches_reference() {
    let mut rng = rng(4);
    for (layout, batch) in cases(&mut rng, Blocks::Any, 46, MAX_BATCH) {
        let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
        let (x, x64) = grid_values(&mut rng, batch * layout.cols);
        let (g, g64) = grid_values(&mut rng, batch * layout.rows);
        let got = backward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            &g,
            batch,
            true,
            Some(THRESHOLD),
            &DecodeCache::default(),
        )
        .unwrap();
        let want = reference::layer_backward(
            &seeds.params,
            &layout,
            &x64,
            &g64,
            batch,
            f64::from(THRESHOLD),
        )
        .unwrap();
        let what = format!("{layout} batch {batch}");
        let got_x = got.x.as_deref().unwrap();
        assert_close(
            got_x,
            want.x.as_deref().unwrap(),
            TOLERANCE,
            &format!("grad_x {what}"),
        );
        assert_close(
            &got.coords,
            &want.coords,
            TOLERANCE,
            &format!("grad (r, θ) {what}"),
        );
        let want_counts: Vec<f32> = want
            .signal
            .expect("transition counts")
            .iter()
            .map(|&c| c as f32)
            .collect();
        assert_eq!(got.signal.unwrap(), want_counts, "{layout} batch {batch}");

        let alone = transition_counts(&layout, &x, &g, batch, THRESHOLD).unwrap();
        assert_eq!(alone, want_counts);
        let lean = backward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &x,
            &g,
            batch,
            false,
            None,
            &DecodeCache::default(),
        )
        .unwrap();
        assert!(lean.x.is_none() && lean.signal.is_none());
        assert_eq!(lean.coords, got.coords);
    }
}

#[test]
fn decode_matches_reference() {
    let mut rng = rng(6);
    for (layout, _) in cases(&mut rng, Blocks::Any, 16, MAX_BATCH) {
        let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
        let w = decode(&layout, &seeds.coords, &seeds.bits).unwrap();
        let want = reference::decode_dense(&seeds.params, &layout).unwrap();
        assert_close(&w, &want, TOLERANCE, &format!("{layout}"));
    }
}

#[test]
fn a_cache_decodes_its_seeds_once_and_again_after_clear() {
    let mut rng = rng(7);
    let mut seeds = PaperSeeds::random(&mut rng, 300);
    let cache = DecodeCache::default();
    let decode = |seeds: &PaperSeeds| {
        cache
            .get_or_decode(&seeds.coords, &seeds.bits, || {
                Coefficients::decode(&seeds.coords, &seeds.bits)
            })
            .unwrap()
    };
    let first = decode(&seeds);
    let again = decode(&seeds);
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "a hit, not a decode"
    );

    // Edited in place: the owner clears the cache (RbeSeeds gives new values a new one).
    seeds.coords[2 * 150] += 0.25;
    cache.clear();
    let moved = decode(&seeds);
    assert_eq!(
        *moved,
        Coefficients::decode(&seeds.coords, &seeds.bits).unwrap()
    );
    assert_ne!(moved.ab()[300..302], first.ab()[300..302]);
}

#[test]
fn lengths_are_checked() {
    let layout = BlockLayout::new(8, 8, 4, 4).unwrap();
    let mut rng = rng(8);
    let seeds = PaperSeeds::random(&mut rng, 4);
    let mut y = vec![0.0; 8];
    assert!(
        forward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &[0.0; 7],
            1,
            &mut y,
            &DecodeCache::default()
        )
        .is_err()
    );
    assert!(
        forward(
            &layout,
            &seeds.coords[2..],
            &seeds.bits[2..],
            &[0.0; 8],
            1,
            &mut y,
            &DecodeCache::default()
        )
        .is_err()
    );
    assert!(
        forward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &[0.0; 8],
            1,
            &mut y[1..],
            &DecodeCache::default()
        )
        .is_err()
    );
    assert!(
        forward(
            &layout,
            &seeds.coords,
            &seeds.bits,
            &[],
            0,
            &mut [],
            &DecodeCache::default()
        )
        .is_ok()
    );
}

/// Inputs for the vector math: every 4099th finite f32 bit pattern (all exponents, both
/// signs, subnormals included), a fine sweep of [-100, 100], random values near 0, and the
/// special values.
fn math_inputs(rng: &mut rand::rngs::StdRng) -> Vec<f32> {
    let mut xs: Vec<f32> = (0..=u32::MAX)
        .step_by(4099)
        .map(f32::from_bits)
        .filter(|x| x.is_finite())
        .collect();
    xs.extend((-100_000..=100_000).map(|i| i as f32 * 1e-3));
    xs.extend((0..50_000).map(|_| rng.random_range(-1.0f32..1.0) * 1e-4));
    xs.extend((0..50_000).map(|_| rng.random_range(-50.0f32..50.0)));
    xs.extend([
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::from_bits(0x007f_ffff),
        f32::MAX,
        f32::MIN,
        88.72,
        88.73,
        -86.5,
        -87.0,
        -103.0,
    ]);
    xs
}

/// Keeps the larger error and its input.
fn worse(worst: &mut (f64, f32), err: f64, x: f32) {
    if err > worst.0 {
        *worst = (err, x);
    }
}

/// `|got - want|` in units of the f32 spacing at `want` (2^-149 for subnormal results).
fn ulps(got: f32, want: f64) -> f64 {
    let rounded = want as f32;
    if rounded.is_infinite() || got.is_infinite() {
        return if got == rounded { 0.0 } else { f64::INFINITY };
    }
    let w = rounded.abs();
    let exponent = (w.to_bits() >> 23).max(1) as i32 - 127;
    (f64::from(got) - want).abs() / f64::from(exponent - 23).exp2()
}

#[test]
fn fast_exp_m1_matches_std() {
    let mut rng = rng(20);
    let mut worst = (0.0, 0.0f32);
    for x in math_inputs(&mut rng) {
        let (got, want) = (fast_math::exp_m1(x), f64::from(x).exp_m1());
        let err = ulps(got, want);
        assert!(
            err <= 2.5,
            "expm1({x:e}) = {got:e}, want {want:e}: {err} ulp"
        );
        worse(&mut worst, err, x);
    }
    eprintln!("exp_m1: worst {} ulp at {:e}", worst.0, worst.1);
}

#[test]
fn fast_tanh_sech2_matches_std() {
    let mut rng = rng(21);
    let (mut worst_t, mut worst_s) = ((0.0, 0.0f32), (0.0, 0.0f32));
    for z in math_inputs(&mut rng) {
        let (t, s) = fast_math::tanh_sech2(z);
        let zd = f64::from(z);
        let e = (-2.0 * zd.abs()).exp();
        let (want_t, want_s) = (zd.tanh(), 4.0 * e / ((1.0 + e) * (1.0 + e)));
        let err_t = ulps(t, want_t);
        assert!(
            err_t <= 3.5,
            "tanh({z:e}) = {t:e}, want {want_t:e}: {err_t} ulp"
        );
        worse(&mut worst_t, err_t, z);
        // Flushed to 0 where sech² < 1.1e-37 (|z| > 43.2).
        if want_s >= 1.1e-37 {
            let err_s = ulps(s, want_s);
            assert!(
                err_s <= 6.0,
                "sech²({z:e}) = {s:e}, want {want_s:e}: {err_s} ulp"
            );
            worse(&mut worst_s, err_s, z);
        } else {
            assert!((0.0..=1.1e-37).contains(&s), "sech²({z:e}) = {s:e}");
        }
    }
    eprintln!("tanh: worst {} ulp at {:e}", worst_t.0, worst_t.1);
    eprintln!("sech²: worst {} ulp at {:e}", worst_s.0, worst_s.1);
}

#[test]
fn fast_sin_cos_match_std() {
    let mut rng = rng(22);
    let mut xs = math_inputs(&mut rng);
    xs.extend((0..200_000).map(|_| rng.random_range(-1e6f32..1e6)));
    // The f32 values nearest multiples of π/2, where the reduction cancels most.
    xs.extend((-20_000..=20_000).map(|k| (f64::from(k) * std::f64::consts::FRAC_PI_2) as f32));
    let (mut worst_ulp, mut worst_abs) = ((0.0, 0.0f32), (0.0, 0.0f32));
    for x in xs {
        let (s, c) = fast_math::sin_cos(x);
        assert!(
            (-1.0..=1.0).contains(&s) && (-1.0..=1.0).contains(&c),
            "sin_cos({x:e}) = ({s:e}, {c:e})"
        );
        if x.abs() > 1e6 {
            continue;
        }
        let (want_s, want_c) = f64::from(x).sin_cos();
        for (got, want) in [(s, want_s), (c, want_c)] {
            let (err, abs) = (ulps(got, want), (f64::from(got) - want).abs());
            assert!(
                err <= 2.0 && abs <= f64::from(2f32.powi(-23)),
                "sin_cos({x:e}) = ({s:e}, {c:e}), want ({want_s:e}, {want_c:e}): {err} ulp, {abs:e}"
            );
            worse(&mut worst_ulp, err, x);
            worse(&mut worst_abs, abs, x);
        }
    }
    eprintln!(
        "sin_cos: worst {} ulp at {:e}, worst abs {:e} at {:e}",
        worst_ulp.0, worst_ulp.1, worst_abs.0, worst_abs.1
    );
}

/// `(A(r), A'(r))` in f64 by the folded gains, with `sech² = 4e / (1 + e)²`, accurate where
/// `1 - tanh²` would round to 0.
fn amplitude_f64(r: f64) -> (f64, f64) {
    let gains = reference::folded_gains();
    let (mut rho, mut slope) = (r, 1.0);
    for g in gains.before_squash {
        let z = rho * g;
        let e = (-2.0 * z.abs()).exp();
        slope *= g * 4.0 * e / ((1.0 + e) * (1.0 + e));
        rho = z.tanh();
    }
    (rho * gains.tail, slope * gains.tail)
}

/// `n` seeds with `r` over every scale (0, ±subnormal, up to ±f32::MAX) and `θ` up to
/// ±1e4, as `(coords, bits)`.
fn extreme_seeds(rng: &mut rand::rngs::StdRng, n: usize) -> (Vec<f32>, Vec<i32>) {
    let (mut coords, mut bits) = (Vec::with_capacity(2 * n), Vec::with_capacity(2 * n));
    let special = [
        0.0,
        -0.0,
        f32::from_bits(1),
        -f32::from_bits(3),
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        1e-30,
        -1e30,
        30.0,
        -31.0,
    ];
    for s in 0..n {
        let r = match s % 4 {
            0 => rng.random_range(-3.0f32..3.0),
            1 => rng.random_range(0.1f32..2.0),
            2 => {
                let magnitude = 10f32.powf(rng.random_range(-38.0f32..38.0));
                if rng.random() { magnitude } else { -magnitude }
            }
            _ => special[rng.random_range(0..special.len())],
        };
        let theta = match s % 3 {
            0 => rng.random_range(-1e4f32..1e4),
            1 => rng.random_range(-3.2f32..3.2),
            _ => (f64::from(rng.random_range(-6000i32..6000)) * std::f64::consts::FRAC_PI_2) as f32,
        };
        coords.extend([r, theta]);
        bits.extend([rng.random::<i32>(), rng.random::<i32>()]);
    }
    (coords, bits)
}

#[test]
fn coefficients_match_f64_on_extreme_seeds() {
    let mut rng = rng(23);
    let tables = [
        reference::phase_table(0),
        reference::phase_table(reference::PHASE_TABLE_BITS),
    ];
    let mask = (1u32 << reference::PHASE_TABLE_BITS) - 1;
    // Above and below the parallel split, neither a multiple of the chunk.
    for n in [3001, 37] {
        let (coords, bits) = extreme_seeds(&mut rng, n);
        let c = Coefficients::decode(&coords, &bits).unwrap();
        let (mut worst_ab, mut worst_dr) = (0.0f64, 0.0f64);
        for s in 0..n {
            let (r, theta, low) = (coords[2 * s], coords[2 * s + 1], bits[2 * s + 1] as u32);
            let phase = tables[0][(low & mask) as usize]
                + tables[1][((low >> reference::PHASE_TABLE_BITS) & mask) as usize];
            // The kernel's angle: summed in f64, rounded once to f32.
            let angle = f64::from((f64::from(theta) + phase) as f32);
            let (amp, amp_d) = amplitude_f64(r.into());
            let (sin, cos) = angle.sin_cos();
            let want = [amp * cos, -amp * sin, amp_d * cos, -amp_d * sin];
            let got = [
                c.ab()[2 * s],
                c.ab()[2 * s + 1],
                c.ab_dr()[2 * s],
                c.ab_dr()[2 * s + 1],
            ];
            // Relative to the pair's magnitude |A| or |A'|; A' below 1e-30 is flushed.
            for (k, (g, w)) in got.iter().zip(want).enumerate() {
                let scale = if k < 2 { amp.abs() } else { amp_d.abs() };
                let err = (f64::from(*g) - w).abs() / scale.max(1e-30);
                assert!(
                    err <= 4e-6,
                    "seed {s} (r {r:e}, θ {theta:e}): {got:?} vs {want:?}"
                );
                if k < 2 {
                    worst_ab = worst_ab.max(err);
                } else {
                    worst_dr = worst_dr.max(err);
                }
            }
        }
        eprintln!("n {n}: worst relative error (a, b) {worst_ab:e}, (∂a, ∂b)/∂r {worst_dr:e}");
    }
}

#[test]
fn coefficients_agree_across_kernels_and_positions() {
    let mut rng = rng(24);
    let (coords, bits) = extreme_seeds(&mut rng, 2500);
    let detected = Coefficients::decode(&coords, &bits).unwrap();
    // Bit for bit: the AVX2 build (where the CPU has it) and the portable one.
    let portable = Coefficients::decode_with(&coords, &bits, Kernel::Portable).unwrap();
    assert_eq!(detected, portable);
    // A seed's result does not depend on its lane or on the padding of a last chunk.
    for skip in [1, 5, 16, 2490] {
        let shifted = Coefficients::decode(&coords[2 * skip..], &bits[2 * skip..]).unwrap();
        assert_eq!(shifted.ab(), &detected.ab()[2 * skip..]);
        assert_eq!(shifted.ab_dr(), &detected.ab_dr()[2 * skip..]);
    }
    // The f64 helper of the extreme-seed test is the reference's map.
    for r in [-2.5, 0.0, 0.3, 1.7, 6.0] {
        let (amp, amp_d) = amplitude_f64(r);
        assert!((amp - reference::amplitude(r)).abs() < 1e-12);
        assert!((amp_d - reference::amplitude_derivative(r)).abs() < 1e-12);
    }
}
