//! The ternary seed's packing, checks, encoder and reference.

use half::f16;
use rand::Rng;

use super::*;
use crate::testing::{Blocks, TernarySeeds, cases, random_vec, rng};
use crate::{BlockLayout, KernelError, Packed128};

fn random_codes(rng: &mut impl Rng) -> [u8; TERNARY_CELLS] {
    let mut codes = [0u8; TERNARY_CELLS];
    for c in &mut codes {
        *c = rng.random_range(0..3);
    }
    codes
}

#[test]
fn packing_round_trips_through_both_forms() {
    let mut rng = rng(401);
    let extremes = [[0u8; 64], [1u8; 64], [2u8; 64]];
    let random: Vec<[u8; 64]> = (0..500).map(|_| random_codes(&mut rng)).collect();
    for codes in extremes.iter().chain(&random) {
        let alpha = round_alpha(rng.random_range(0.0f32..10.0));
        let seed = pack(codes, alpha).unwrap();
        assert_eq!(unpack(&seed).unwrap(), (*codes, alpha));
        let (coords, words) = to_device(&seed).unwrap();
        assert_eq!(coords, [alpha, 0.0]);
        let wide: Vec<i64> = words.iter().map(|&w| i64::from(w)).collect();
        assert_eq!(from_device(0, coords, &wide).unwrap(), seed);
        assert_eq!(words_to_codes(0, &wide).unwrap(), *codes);
        // The reserved bits are zero and the integer is below 3^64.
        assert_eq!(seed.hi >> 54, 0);
        validate(&seed).unwrap();
    }
    // All levels -1 is the largest integer: 3^64 - 1.
    let top = pack(&[2u8; 64], 0.0).unwrap();
    assert_eq!(
        (u128::from(top.hi) << 64) | u128::from(top.lo),
        THREE_POW_64 - 1
    );
    // The all-zero block with alpha 0 is the all-zero seed.
    assert_eq!(pack(&[0u8; 64], 0.0).unwrap(), Packed128::default());
}

#[test]
fn bad_seeds_are_typed_errors() {
    let good = pack(&[1u8; 64], 0.5).unwrap();
    let reserved = Packed128 {
        hi: good.hi | 1 << 60,
        ..good
    };
    assert!(matches!(
        validate(&reserved),
        Err(KernelError::ReservedBits { .. })
    ));
    // The integer 3^64 itself, with a valid alpha.
    let over = THREE_POW_64 | (u128::from(f16::from_f32(0.5).to_bits()) << 102);
    let over = Packed128 {
        hi: (over >> 64) as u64,
        lo: over as u64,
    };
    assert!(matches!(
        validate(&over),
        Err(KernelError::CodeOutOfRange { .. })
    ));
    for bad in [f16::NAN, f16::INFINITY, f16::from_f32(-1.0)] {
        let v = u128::from(bad.to_bits()) << 102;
        let seed = Packed128 {
            hi: (v >> 64) as u64,
            lo: v as u64,
        };
        assert!(matches!(validate(&seed), Err(KernelError::InvalidScale(_))));
    }
    for alpha in [f32::NAN, -1.0, 1e6] {
        assert!(matches!(
            pack(&[0; 64], alpha),
            Err(KernelError::InvalidScale(_))
        ));
    }
    let mut codes = [0u8; 64];
    codes[5] = 3;
    assert!(matches!(
        pack(&codes, 1.0),
        Err(KernelError::CodeOutOfRange { .. })
    ));
    // A device code 11.
    assert_eq!(
        from_device(7, [1.0, 0.0], &[0, 0, 0b11 << 6, 0]),
        Err(KernelError::InvalidCode { seed: 7, cell: 35 })
    );
    let big = BlockLayout::new(16, 16, 16, 16).unwrap();
    assert!(matches!(
        check_block(&big),
        Err(KernelError::TooLarge { .. })
    ));
}

/// The constraint's rounding is the f16 one, on values spread over the whole range.
#[test]
fn round_alpha_is_f16_rounding() {
    let mut rng = rng(402);
    for _ in 0..100_000 {
        let x = 2f32.powf(rng.random_range(-16.0f32..17.0)) * rng.random_range(0.5f32..1.0);
        let want = f16::from_f32(x.clamp(ALPHA_MIN, ALPHA_MAX)).to_f32();
        assert_eq!(round_alpha(x), want, "{x}");
    }
    assert_eq!(round_alpha(-3.0), ALPHA_MIN);
    assert_eq!(round_alpha(0.0), ALPHA_MIN);
    assert_eq!(round_alpha(1e9), ALPHA_MAX);
    assert_eq!(ALPHA_MIN, f16::MIN_POSITIVE.to_f32());
    assert_eq!(ALPHA_MAX, f16::MAX.to_f32());
}

/// The block fit is the least-squares optimum: no other support does better, checked
/// against every ternary pattern of small blocks.
#[test]
fn fit_block_is_exact_on_small_blocks() {
    let mut rng = rng(403);
    for len in 1..=7usize {
        for _ in 0..30 {
            let v = random_vec(&mut rng, len);
            let (alpha, levels) = fit_block(&v);
            let err = |alpha: f64, levels: &[i8]| -> f64 {
                v.iter()
                    .zip(levels)
                    .map(|(w, &t)| (w - alpha * f64::from(t)).powi(2))
                    .sum()
            };
            let got = err(alpha, &levels);
            for pattern in 0..3usize.pow(len as u32) {
                let mut p = pattern;
                let levels: Vec<i8> = (0..len)
                    .map(|_| {
                        let t = (p % 3) as i8 - 1;
                        p /= 3;
                        t
                    })
                    .collect();
                let nonzero: f64 = levels.iter().map(|t| f64::from(t.abs())).sum();
                let best_alpha = if nonzero > 0.0 {
                    v.iter()
                        .zip(&levels)
                        .map(|(w, &t)| w * f64::from(t))
                        .sum::<f64>()
                        / nonzero
                } else {
                    0.0
                };
                assert!(got <= err(best_alpha, &levels) + 1e-12, "{v:?}");
            }
        }
    }
}

/// A ternary matrix with f16 scales is encoded exactly.
#[test]
fn encoder_recovers_ternary_matrices() {
    let mut rng = rng(404);
    for (layout, _) in cases(&mut rng, Blocks::AtMost64, 15, 1) {
        let seeds = TernarySeeds::random(&mut rng, &layout);
        let w = decode_dense(&seeds.packed, &layout).unwrap();
        let (fitted, report) = encode_dense(&w, &layout).unwrap();
        assert!(report.relative_error < 1e-12, "{layout}: {report:?}");
        assert_eq!(decode_dense(&fitted, &layout).unwrap(), w);
        assert_eq!(report.clamped_high, 0);
    }
}

#[test]
fn encoder_errors_are_typed() {
    let layout = BlockLayout::new(2, 2, 2, 2).unwrap();
    assert!(matches!(
        encode_dense(&[1.0, f64::NAN, 0.0, 0.0], &layout),
        Err(KernelError::InvalidScale(_))
    ));
    let big = BlockLayout::new(16, 16, 16, 16).unwrap();
    assert!(matches!(
        encode_dense(&[0.0; 256], &big),
        Err(KernelError::TooLarge { .. })
    ));
    // All zero: the floor alpha, every level 0, no error.
    let (seeds, report) = encode_dense(&[0.0; 4], &layout).unwrap();
    assert_eq!(report.frobenius_error, 0.0);
    assert_eq!(report.clamped_low, 1);
    assert_eq!(unpack(&seeds[0]).unwrap(), ([0u8; 64], ALPHA_MIN));
}

/// `dL/dalpha` and `dL/dx` of the reference against central differences of its forward,
/// `L = Σ g·y`; the signal against `dW = Gᵀx` formed directly.
#[test]
fn reference_gradients_match_finite_differences() {
    let mut rng = rng(405);
    for (layout, batch) in cases(&mut rng, Blocks::AtMost64, 10, 4) {
        let seeds = TernarySeeds::random(&mut rng, &layout);
        let params = seeds.params.clone();
        let x = random_vec(&mut rng, batch * layout.cols);
        let g = random_vec(&mut rng, batch * layout.rows);
        let loss = |p: &[TernaryParams], x: &[f64]| -> f64 {
            let y = reference::forward(&p.iter().collect::<Vec<_>>(), &layout, x, batch).unwrap();
            y.iter().zip(&g).map(|(a, b)| a * b).sum()
        };
        let grads = reference::backward(&seeds.packed, &layout, &x, &g, batch).unwrap();
        let h = 1e-4;
        for s in 0..params.len() {
            let (mut up, mut down) = (params.clone(), params.clone());
            up[s].alpha += h;
            down[s].alpha -= h;
            let fd = (loss(&up, &x) - loss(&down, &x)) / (2.0 * h);
            let got = grads.coords[2 * s];
            assert!(
                (fd - got).abs() <= 1e-6 * (1.0 + fd.abs()),
                "{layout} seed {s}"
            );
            assert_eq!(grads.coords[2 * s + 1], 0.0);
        }
        let dx = grads.x.as_ref().unwrap();
        for k in 0..x.len().min(40) {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[k] += h;
            down[k] -= h;
            let fd = (loss(&params, &up) - loss(&params, &down)) / (2.0 * h);
            assert!(
                (fd - dx[k]).abs() <= 1e-6 * (1.0 + fd.abs()),
                "{layout} x[{k}]"
            );
        }
        let signal = grads.signal.as_ref().unwrap();
        for row in 0..layout.rows {
            for col in 0..layout.cols {
                let (s, i, j) = layout.locate(row, col);
                let d: f64 = (0..batch)
                    .map(|n| g[n * layout.rows + row] * x[n * layout.cols + col])
                    .sum();
                let got = signal[TERNARY_CELLS * s + i * layout.block_cols + j];
                assert!((got - d).abs() <= 1e-12, "{layout} cell ({row}, {col})");
            }
        }
    }
}

/// The numbers the format was chosen on: the relative Frobenius error of the best sign
/// blueprint and the best ternary fit of 8x8 blocks of i.i.d. Gaussian weights.
/// `RBE_PRINT_ERRORS=1` prints them.
#[test]
fn ternary_fits_gaussian_blocks_better_than_sign() {
    let mut rng = rng(406);
    let gaussian = |rng: &mut rand::rngs::StdRng| {
        // Box-Muller.
        let (u, v): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let blocks: Vec<Vec<f64>> = (0..4000)
        .map(|_| (0..64).map(|_| 0.02 * gaussian(&mut rng)).collect())
        .collect();
    let (sign, ternary) = compare_fits(&blocks).unwrap();
    if std::env::var_os("RBE_PRINT_ERRORS").is_some() {
        eprintln!("Gaussian 8x8 blocks: sign {sign:.4}, ternary {ternary:.4}");
    }
    assert!((0.55..0.65).contains(&sign), "sign {sign}");
    assert!((0.38..0.48).contains(&ternary), "ternary {ternary}");
}

/// The ternary errors keep `KernelError` as small as it was: every error type that wraps it
/// (`RbeError`, the examples' checkpoint errors) grows with it.
#[test]
fn kernel_errors_stay_small() {
    assert!(std::mem::size_of::<KernelError>() <= 40);
}
