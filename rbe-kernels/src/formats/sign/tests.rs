//! Properties of the sign-blueprint reference: bit fields, decode by hand, the layer against
//! decode-then-matmul and finite differences, the encoder, the two bit-training rules, and
//! the typed errors.

use proptest::prelude::*;
use rand::Rng;

use super::reference::{backward, forward};
use super::*;
use crate::testing::{SignSeeds, random_vec, rng};
use crate::{BlockLayout, KernelError, Packed128};

/// `W` as the reference's naive `y = x W^T`.
fn matmul_t(x: &[f64], w: &[f64], batch: usize, rows: usize, cols: usize) -> Vec<f64> {
    let mut y = vec![0.0; batch * rows];
    for n in 0..batch {
        for o in 0..rows {
            y[n * rows + o] = (0..cols).map(|k| x[n * cols + k] * w[o * cols + k]).sum();
        }
    }
    y
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "[{k}] {x} vs {y}");
    }
}

proptest! {
    #[test]
    fn bits_alpha_mu_round_trip(
        bits in any::<u64>(), alpha in -1.0e6f32..1.0e6, mu in -1.0e6f32..1.0e6,
        bc in 1usize..=64, k in 0usize..64, bit in any::<bool>(),
    ) {
        let seed = Packed128::from_sign_parts(bits, alpha, mu).unwrap();
        prop_assert_eq!((seed.sign_bits(), seed.alpha(), seed.mu()), (bits, alpha, mu));
        prop_assert_eq!(Packed128::from_le_bytes(&seed.to_le_bytes()).unwrap(), seed);
        let json = serde_json::to_string(&seed).unwrap();
        prop_assert_eq!(serde_json::from_str::<Packed128>(&json).unwrap(), seed);
        prop_assert_eq!(SignParams::from(seed).to_seed().unwrap(), seed);

        let (i, j) = (k / bc, k % bc);
        prop_assert_eq!(seed.sign_bit(i, j, bc), bits >> k & 1 == 1);
        let set = seed.with_sign_bit(i, j, bc, bit);
        prop_assert_eq!(set.sign_bit(i, j, bc), bit);
        prop_assert_eq!(set.sign_bits() & !(1 << k), bits & !(1 << k), "other bits kept");
        prop_assert_eq!(set.lo, seed.lo, "alpha and mu kept");
    }
}

#[test]
#[should_panic(expected = "outside the 64 sign bits")]
fn a_cell_past_bit_63_panics() {
    Packed128::default().sign_bit(8, 0, 8);
}

#[test]
fn decode_by_hand_with_cropped_edges() {
    // A 3x3 matrix in 2x2 blocks: seeds 1, 2 and 3 are cropped to 2x1, 1x2 and 1x1.
    let layout = BlockLayout::square(3, 3, 2).unwrap();
    let seeds = [
        Packed128::from_sign_parts(0b1001, 1.0, 0.0).unwrap(), // [[+1, -1], [-1, +1]]
        Packed128::from_sign_parts(0b0110, 0.5, 2.0).unwrap(), // column 0 of [[1.5, 2.5], [2.5, 1.5]]
        Packed128::from_sign_parts(0b1110, 0.25, -1.0).unwrap(), // row 0 of [[-1.25, -0.75], ..]
        Packed128::from_sign_parts(!0, 2.0, 1.0).unwrap(),     // 3
    ];
    #[rustfmt::skip]
    let expected = [
        1.0, -1.0, 1.5,
        -1.0, 1.0, 2.5,
        -1.25, -0.75, 3.0,
    ];
    assert_eq!(decode_dense(&seeds, &layout).unwrap(), expected);
}

#[test]
fn decode_by_hand_rectangular_blocks() {
    // One 4x16 block: cells (0, 0), (1, 1) and (3, 15) are high, at bits 0, 17 and 63.
    let layout = BlockLayout::new(4, 16, 4, 16).unwrap();
    let seed = Packed128::from_sign_parts(1 | 1 << 17 | 1 << 63, 0.5, 0.25).unwrap();
    let w = decode_dense(&[seed], &layout).unwrap();
    for row in 0..4 {
        for col in 0..16 {
            let high = [(0, 0), (1, 1), (3, 15)].contains(&(row, col));
            assert_eq!(w[row * 16 + col], if high { 0.75 } else { -0.25 });
        }
    }

    // 6x20 in 4x16 blocks: cell (5, 19) is in seed 3 at (1, 3), bit 1*16 + 3 = 19.
    let layout = BlockLayout::new(6, 20, 4, 16).unwrap();
    let mut seeds = vec![Packed128::from_sign_parts(0, 1.0, 0.0).unwrap(); 4];
    seeds[3] = seeds[3].with_sign_bit(1, 3, 16, true);
    let w = decode_dense(&seeds, &layout).unwrap();
    for row in 0..6 {
        for col in 0..20 {
            let expected = if (row, col) == (5, 19) { 1.0 } else { -1.0 };
            assert_eq!(w[row * 20 + col], expected, "({row}, {col})");
        }
    }
}

#[test]
fn valid_masks_follow_the_crop() {
    let layout = BlockLayout::new(6, 20, 4, 16).unwrap();
    assert_eq!(valid_mask(&layout, 0), u64::MAX);
    assert_eq!(valid_mask(&layout, 1), 0x000F_000F_000F_000F);
    assert_eq!(valid_mask(&layout, 2), 0xFFFF_FFFF);
    assert_eq!(valid_mask(&layout, 3), 0x000F_000F);
    let line = BlockLayout::new(3, 64, 1, 64).unwrap();
    assert_eq!(valid_mask(&line, 2), u64::MAX);
    let small = BlockLayout::square(5, 5, 4).unwrap();
    assert_eq!(valid_mask(&small, 0), 0xFFFF);
    assert_eq!(valid_mask(&small, 3), 1);
}

#[test]
fn forward_is_decode_then_matmul() {
    let mut rng = rng(1);
    for (rows, cols, br, bc) in [(13, 21, 8, 8), (9, 35, 4, 16), (7, 5, 3, 2), (2, 70, 1, 64)] {
        let layout = BlockLayout::new(rows, cols, br, bc).unwrap();
        let seeds = SignSeeds::random_positive(&mut rng, &layout).packed;
        let batch = 3;
        let x = random_vec(&mut rng, batch * cols);
        let w = decode_dense(&seeds, &layout).unwrap();
        let y = forward(&seeds, &layout, &x, batch).unwrap();
        close(&y, &matmul_t(&x, &w, batch, rows, cols), 1e-12);
    }
}

#[test]
fn backward_matches_finite_differences_and_decode() {
    let mut rng = rng(2);
    for (rows, cols, br, bc) in [(13, 21, 8, 8), (9, 35, 4, 16), (5, 3, 2, 2)] {
        let layout = BlockLayout::new(rows, cols, br, bc).unwrap();
        let seeds = SignSeeds::random_positive(&mut rng, &layout).params;
        let batch = 4;
        let x = random_vec(&mut rng, batch * cols);
        // The scalar loss L = <c, y>, so dL/dy = c.
        let c = random_vec(&mut rng, batch * rows);
        let loss = |s: &[SignParams]| -> f64 {
            let y = forward(s, &layout, &x, batch).unwrap();
            y.iter().zip(&c).map(|(a, b)| a * b).sum()
        };
        let grads = backward(&seeds, &layout, &x, &c, batch).unwrap();

        let h = 1e-5;
        for s in 0..seeds.len() {
            let fd = |set: &dyn Fn(&mut SignParams, f64)| {
                let (mut plus, mut minus) = (seeds.clone(), seeds.clone());
                set(&mut plus[s], h);
                set(&mut minus[s], -h);
                (loss(&plus) - loss(&minus)) / (2.0 * h)
            };
            let fd_alpha = fd(&|p, d| p.alpha += d);
            let fd_mu = fd(&|p, d| p.mu += d);
            assert!((grads.coords[2 * s] - fd_alpha).abs() < 1e-7, "alpha[{s}]");
            assert!((grads.coords[2 * s + 1] - fd_mu).abs() < 1e-7, "mu[{s}]");
        }

        // grad_x = G W, with W decoded.
        let w = decode_dense(&seeds, &layout).unwrap();
        let mut wt = vec![0.0; rows * cols];
        for o in 0..rows {
            for k in 0..cols {
                wt[k * rows + o] = w[o * cols + k];
            }
        }
        let grad_x = grads.x.expect("dL/dx");
        close(&grad_x, &matmul_t(&c, &wt, batch, cols, rows), 1e-12);

        // The signal is dW = G^T x at each stored cell and zero elsewhere.
        let signal = grads.signal.expect("cell signal");
        assert_eq!(signal.len(), seeds.len() * SIGN_CELLS);
        for (s, signal) in signal.chunks_exact(SIGN_CELLS).enumerate() {
            let mask = valid_mask(&layout, s);
            for (k, &v) in signal.iter().enumerate() {
                if mask >> k & 1 == 0 {
                    assert_eq!(v, 0.0);
                    continue;
                }
                let row = (s / layout.col_blocks()) * br + k / bc;
                let col = (s % layout.col_blocks()) * bc + k % bc;
                let dw: f64 = (0..batch)
                    .map(|n| c[n * rows + row] * x[n * cols + col])
                    .sum();
                assert!((v - dw).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn encoders_recover_balanced_blueprints_exactly() {
    // 16x16 in 8x8 blocks, each block with exactly 32 set bits: both fits are exact.
    let mut rng = rng(3);
    let layout = BlockLayout::square(16, 16, 8).unwrap();
    let seeds: Vec<Packed128> = (0..4)
        .map(|_| {
            let mut cells: Vec<usize> = (0..64).collect();
            let mut bits = 0u64;
            for _ in 0..32 {
                bits |= 1 << cells.swap_remove(rng.random_range(0..cells.len()));
            }
            let alpha = rng.random_range(1..64) as f32 / 64.0;
            let mu = rng.random_range(-64..64) as f32 / 64.0;
            Packed128::from_sign_parts(bits, alpha, mu).unwrap()
        })
        .collect();
    let w = decode_dense(&seeds, &layout).unwrap();
    for fit in [SignFit::Moments, SignFit::TwoMeans] {
        let (got, report) = encode_dense(&w, &layout, fit).unwrap();
        assert_eq!(got, seeds, "{fit:?}");
        assert_eq!(report.relative_error, 0.0);
    }
}

#[test]
fn two_means_recovers_any_blueprint_and_moments_misses_lopsided_ones() {
    let mut rng = rng(4);
    for (rows, cols, br, bc) in [(13, 21, 8, 8), (9, 35, 4, 16), (3, 70, 1, 64)] {
        let layout = BlockLayout::new(rows, cols, br, bc).unwrap();
        let seeds = SignSeeds::random_positive(&mut rng, &layout).packed;
        let w = decode_dense(&seeds, &layout).unwrap();
        let (got, report) = encode_dense(&w, &layout, SignFit::TwoMeans).unwrap();
        assert_eq!(decode_dense(&got, &layout).unwrap(), w);
        assert_eq!(report.relative_error, 0.0);
        for (s, (a, b)) in got.iter().zip(&seeds).enumerate() {
            let mask = valid_mask(&layout, s);
            let ones = (b.sign_bits() & mask).count_ones();
            if ones > 0 && ones < mask.count_ones() {
                // Both levels present: the seed itself comes back, cropped bits cleared.
                assert_eq!(
                    (a.sign_bits(), a.alpha(), a.mu()),
                    (b.sign_bits() & mask, b.alpha(), b.mu())
                );
            }
        }
    }

    // 48 cells at +1 and 16 at -1: the mean is 0.5, not the midpoint 0.
    let layout = BlockLayout::square(8, 8, 8).unwrap();
    let w: Vec<f64> = (0..64).map(|k| if k < 48 { 1.0 } else { -1.0 }).collect();
    let (_, moments) = encode_dense(&w, &layout, SignFit::Moments).unwrap();
    let (seeds, two_means) = encode_dense(&w, &layout, SignFit::TwoMeans).unwrap();
    assert!(moments.relative_error > 0.1, "{moments:?}");
    assert_eq!(two_means.relative_error, 0.0);
    assert_eq!((seeds[0].alpha(), seeds[0].mu()), (1.0, 0.0));
}

#[test]
fn encoder_error_beats_worse_fits() {
    let mut rng = rng(5);
    let layout = BlockLayout::new(20, 37, 4, 16).unwrap();
    let w = random_vec(&mut rng, 20 * 37);
    let err = |seeds: &[Packed128]| {
        let d = decode_dense(seeds, &layout).unwrap();
        w.iter()
            .zip(&d)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let (moments, m_report) = encode_dense(&w, &layout, SignFit::Moments).unwrap();
    let (two_means, t_report) = encode_dense(&w, &layout, SignFit::TwoMeans).unwrap();
    assert!((err(&moments) - m_report.frobenius_error).abs() < 1e-12);
    assert!(t_report.frobenius_error <= m_report.frobenius_error + 1e-12);
    assert!(m_report.relative_error < 1.0);

    let worse = |f: &dyn Fn(&Packed128) -> Packed128| moments.iter().map(f).collect::<Vec<_>>();
    let candidates = [
        worse(&|s| Packed128::from_sign_parts(s.sign_bits(), s.alpha() * 0.5, s.mu()).unwrap()),
        worse(&|s| Packed128::from_sign_parts(s.sign_bits(), s.alpha() * 1.5, s.mu()).unwrap()),
        worse(&|s| Packed128::from_sign_parts(s.sign_bits(), s.alpha(), s.mu() + 0.1).unwrap()),
        worse(&|s| Packed128::from_sign_parts(!s.sign_bits(), s.alpha(), s.mu()).unwrap()),
        worse(&|s| Packed128::from_sign_parts(scrambled_bits(s), s.alpha(), s.mu()).unwrap()),
    ];
    for (n, c) in candidates.iter().enumerate() {
        assert!(err(c) > m_report.frobenius_error, "candidate {n}");
    }

    // Two-means is the optimum: no single bit flip with refitted levels improves a block.
    let (br, bc) = (4, 16);
    for (s, seed) in two_means.iter().enumerate() {
        let mask = valid_mask(&layout, s);
        let (row0, col0) = (
            (s / layout.col_blocks()) * br,
            (s % layout.col_blocks()) * bc,
        );
        let cells: Vec<(usize, f64)> = (0..64)
            .filter(|&k| mask >> k & 1 == 1)
            .map(|k| (k, w[(row0 + k / bc) * 37 + col0 + k % bc]))
            .collect();
        let sse = |bits: u64| {
            let group = |b: bool| {
                let v: Vec<f64> = cells
                    .iter()
                    .filter(|c| (bits >> c.0 & 1 == 1) == b)
                    .map(|c| c.1)
                    .collect();
                let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
                v.iter().map(|x| (x - m).powi(2)).sum::<f64>()
            };
            group(true) + group(false)
        };
        let best = sse(seed.sign_bits());
        for &(k, _) in &cells {
            assert!(sse(seed.sign_bits() ^ 1 << k) >= best - 1e-12);
        }
    }
}

/// A fixed scramble of a seed's bits, a "worse fit" that keeps its levels.
fn scrambled_bits(s: &Packed128) -> u64 {
    s.sign_bits().rotate_left(7) ^ 0x5555_5555_5555_5555
}

#[test]
fn bop_flips_only_confident_cells_against_their_sign() {
    // 2x3 matrix in 2x2 blocks: seed 1 is cropped to its column 0 (bits 0 and 2).
    let layout = BlockLayout::new(2, 3, 2, 2).unwrap();
    let start = [
        Packed128::from_sign_parts(0b0101, 1.0, 0.0).unwrap(),
        Packed128::from_sign_parts(0b0001, 1.0, 0.0).unwrap(),
    ];
    let mut seeds = start;
    let mut momentum = vec![[0.0; SIGN_CELLS]; 2];
    let mut signal = vec![[0.0; SIGN_CELLS]; 2];
    // Seed 0: bits 0 (+, g > 0) and 1 (-, g < 0) are pushed against their sign and
    // flip; bits 2 (+, g < 0) and 3 (-, g > 0) are pushed along it and stay.
    signal[0][..4].copy_from_slice(&[0.5, -0.5, -0.5, 0.5]);
    // Seed 1: bit 0 (+) with |g| below tau stays; bit 2 (-) with g < 0 flips; bit 1 is
    // cropped and must not move however large its signal.
    signal[1][..3].copy_from_slice(&[0.05, 9.0, -0.5]);
    let config = BopConfig {
        gamma: 1.0,
        tau: 0.1,
    };
    let flips = bop_step(&mut seeds, &mut momentum, &signal, &layout, config).unwrap();
    assert_eq!(flips, 3);
    assert_eq!(seeds[0].sign_bits(), 0b0110);
    assert_eq!(seeds[1].sign_bits(), 0b0101);
    assert_eq!(
        &momentum[0][..4],
        &[0.0, 0.0, -0.5, 0.5],
        "flipped cells reset"
    );
    assert_eq!(
        &momentum[1][..3],
        &[0.05, 0.0, 0.0],
        "cropped cell untouched"
    );
    assert_eq!((seeds[0].alpha(), seeds[0].mu()), (1.0, 0.0));

    // With gamma = 0.5 the average needs two pushes to pass tau = 0.3.
    let mut seeds = start;
    let mut momentum = vec![[0.0; SIGN_CELLS]; 2];
    let mut signal = vec![[0.0; SIGN_CELLS]; 2];
    signal[0][0] = 0.4;
    let config = BopConfig {
        gamma: 0.5,
        tau: 0.3,
    };
    assert_eq!(
        bop_step(&mut seeds, &mut momentum, &signal, &layout, config).unwrap(),
        0
    );
    assert_eq!(momentum[0][0], 0.2);
    assert_eq!(
        bop_step(&mut seeds, &mut momentum, &signal, &layout, config).unwrap(),
        1
    );
    assert!(!seeds[0].sign_bit(0, 0, 2));

    // A negative alpha puts bit 0 on the upper level; the rule follows the level.
    let mut seeds = [
        Packed128::from_sign_parts(0, -1.0, 0.0).unwrap(),
        Packed128::from_sign_parts(0, 1.0, 0.0).unwrap(),
    ];
    let mut momentum = vec![[0.0; SIGN_CELLS]; 2];
    let mut signal = vec![[0.0; SIGN_CELLS]; 2];
    signal[0][0] = 0.5; // cell at +1, pushed down: flips.
    signal[0][1] = -0.5; // cell at +1, pushed up: stays.
    let config = BopConfig {
        gamma: 1.0,
        tau: 0.1,
    };
    assert_eq!(
        bop_step(&mut seeds, &mut momentum, &signal, &layout, config).unwrap(),
        1
    );
    assert_eq!(seeds[0].sign_bits(), 1);
}

#[test]
fn bop_flips_lower_a_linear_loss() {
    // For L = <c, y> the loss is linear in W, so every flip Bop makes at gamma = 1 lowers it.
    let mut rng = rng(6);
    let layout = BlockLayout::new(9, 35, 4, 16).unwrap();
    let mut seeds = SignSeeds::random_positive(&mut rng, &layout).packed;
    let batch = 5;
    let x = random_vec(&mut rng, batch * 35);
    let c = random_vec(&mut rng, batch * 9);
    let loss = |s: &[Packed128]| -> f64 {
        let y = forward(s, &layout, &x, batch).unwrap();
        y.iter().zip(&c).map(|(a, b)| a * b).sum()
    };
    let before = loss(&seeds);
    let grads = backward(&seeds, &layout, &x, &c, batch).unwrap();
    let signal: Vec<[f64; SIGN_CELLS]> = grads
        .signal
        .expect("cell signal")
        .chunks_exact(SIGN_CELLS)
        .map(|cells| cells.try_into().expect("64 cells"))
        .collect();
    let mut momentum = vec![[0.0; SIGN_CELLS]; seeds.len()];
    let config = BopConfig {
        gamma: 1.0,
        tau: 0.0,
    };
    let flips = bop_step(&mut seeds, &mut momentum, &signal, &layout, config).unwrap();
    assert!(flips > 0);
    assert!(loss(&seeds) < before);
}

#[test]
fn straight_through_round_trips_and_thresholds_at_mu() {
    let mut rng = rng(7);
    let layout = BlockLayout::new(13, 21, 8, 8).unwrap();
    let seeds = SignSeeds::random_positive(&mut rng, &layout).packed;
    let canonical: Vec<Packed128> = seeds
        .iter()
        .enumerate()
        .map(|(s, p)| {
            Packed128::from_sign_parts(p.sign_bits() & valid_mask(&layout, s), p.alpha(), p.mu())
                .unwrap()
        })
        .collect();
    let mut latents = latent_from_seeds(&seeds, &layout).unwrap();
    assert_eq!(
        latent_to_seeds(&latents, &seeds, &layout).unwrap(),
        canonical
    );

    // A latent weight that crosses mu flips its bit and nothing else.
    let mu = f64::from(seeds[0].mu());
    let was = seeds[0].sign_bit(2, 3, 8);
    latents[0][2 * 8 + 3] = if was { mu - 1e-3 } else { mu + 1e-3 };
    let got = latent_to_seeds(&latents, &seeds, &layout).unwrap();
    assert_eq!(got[0].sign_bits(), canonical[0].sign_bits() ^ 1 << 19);
    assert_eq!(got[1..], canonical[1..]);

    // A negative alpha: the bit picks the level nearer the latent weight.
    let mut latent = [0.0; SIGN_CELLS];
    latent[0] = 2.0;
    latent[1] = -2.0;
    let seed = latent_to_seed(&latent, 0b11, -1.0, 0.0).unwrap();
    assert_eq!(seed.sign_bits(), 0b10);
    assert!(matches!(
        latent_to_seed(&latent, 0b11, f32::NAN, 0.0),
        Err(KernelError::NonFiniteRadius(_))
    ));
}

#[test]
fn oversized_blocks_are_typed_errors() {
    for (br, bc) in [(9, 8), (1, 65), (8, 9), (16, 16)] {
        let layout = BlockLayout::new(32, 32, br, bc).unwrap();
        let too_large = |r: Result<(), KernelError>| {
            assert!(
                matches!(r, Err(KernelError::TooLarge { max: 64, .. })),
                "{br}x{bc}: {r:?}"
            )
        };
        too_large(check_block(&layout));
        let seeds = vec![Packed128::default(); layout.num_blocks()];
        too_large(decode_dense(&seeds, &layout).map(drop));
        too_large(forward(&seeds, &layout, &[0.0; 32], 1).map(drop));
        too_large(backward(&seeds, &layout, &[0.0; 32], &[0.0; 32], 1).map(drop));
        too_large(encode_dense(&[0.0; 32 * 32], &layout, SignFit::Moments).map(drop));
        too_large(latent_from_seeds(&seeds, &layout).map(drop));
    }
    for (br, bc) in [(8, 8), (4, 16), (1, 64), (64, 1), (3, 5)] {
        assert!(check_block(&BlockLayout::new(32, 32, br, bc).unwrap()).is_ok());
    }
}

#[test]
fn non_finite_values_and_bad_lengths_are_typed_errors() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        assert!(matches!(
            Packed128::from_sign_parts(0, bad, 0.0),
            Err(KernelError::NonFiniteRadius(_))
        ));
        assert!(matches!(
            Packed128::from_sign_parts(0, 1.0, bad),
            Err(KernelError::NonFiniteTheta(_))
        ));
        let layout = BlockLayout::square(8, 8, 8).unwrap();
        let raw = [Packed128::from_parts_unchecked(0, 1.0, bad)];
        assert!(matches!(
            decode_dense(&raw, &layout),
            Err(KernelError::NonFiniteTheta(_))
        ));
        let params = [SignParams {
            bits: 0,
            alpha: f64::from(bad),
            mu: 0.0,
        }];
        assert!(matches!(
            decode_dense(&params, &layout),
            Err(KernelError::NonFiniteRadius(_))
        ));
        let mut w = vec![0.0; 64];
        w[5] = f64::from(bad);
        assert!(encode_dense(&w, &layout, SignFit::Moments).is_err());
        assert!(encode_dense(&w, &layout, SignFit::TwoMeans).is_err());
    }
    // Finite in f64 but past f32: the fitted mu cannot be stored.
    let layout = BlockLayout::square(8, 8, 8).unwrap();
    assert!(matches!(
        encode_dense(&[1e39; 64], &layout, SignFit::Moments),
        Err(KernelError::NonFiniteTheta(_))
    ));

    let seeds = [Packed128::default()];
    let length = |r: Result<(), KernelError>, what: &str| {
        assert!(
            matches!(r, Err(KernelError::LengthMismatch { what: w, .. }) if w == what),
            "{r:?}"
        );
    };
    length(decode_dense(&seeds[..0], &layout).map(drop), "seeds");
    length(forward(&seeds, &layout, &[0.0; 7], 1).map(drop), "x");
    length(
        backward(&seeds, &layout, &[0.0; 8], &[0.0; 7], 1).map(drop),
        "grad_output",
    );
    length(
        encode_dense(&[0.0; 63], &layout, SignFit::Moments).map(drop),
        "w",
    );
    length(latent_to_seeds(&[], &seeds, &layout).map(drop), "latents");
    let mut s = seeds;
    length(
        bop_step(
            &mut s,
            &mut [],
            &[[0.0; SIGN_CELLS]],
            &layout,
            BopConfig {
                gamma: 1.0,
                tau: 0.0,
            },
        )
        .map(drop),
        "momentum",
    );
}

proptest! {
    #[test]
    fn two_means_matches_brute_force(values in proptest::collection::vec(-4i32..4, 8)) {
        // Small integers make ties common, the case the split search must get right.
        let w: Vec<f64> = values.iter().map(|&v| f64::from(v) / 4.0).collect();
        let layout = BlockLayout::new(2, 4, 2, 4).unwrap();
        let (_, report) = encode_dense(&w, &layout, SignFit::TwoMeans).unwrap();
        let best = (0u32..256)
            .map(|bits| {
                let group = |b: bool| {
                    let v: Vec<f64> =
                        (0..8).filter(|&k| (bits >> k & 1 == 1) == b).map(|k| w[k]).collect();
                    let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
                    v.iter().map(|x| (x - m).powi(2)).sum::<f64>()
                };
                group(true) + group(false)
            })
            .fold(f64::INFINITY, f64::min);
        prop_assert!((report.frobenius_error.powi(2) - best).abs() < 1e-9,
            "{} vs {best}", report.frobenius_error.powi(2));
    }
}
