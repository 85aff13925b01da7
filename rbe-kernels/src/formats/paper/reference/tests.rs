//! Properties of the reference: the closed form against the CORDIC loop, gradients against
//! finite differences, transitions against the sequential loop, and the fitters.

use proptest::prelude::*;
use rand::Rng;

use super::*;
use crate::BlockLayout;
use crate::testing::{PaperSeeds, random_vec, rng};

fn seed_params() -> impl Strategy<Value = SeedParams> {
    (0.05f64..3.0, -7.0f64..7.0, any::<u32>()).prop_map(|(r, theta, rotations)| SeedParams {
        r,
        theta,
        rotations,
    })
}

fn position() -> impl Strategy<Value = (usize, usize, usize, usize)> {
    (1usize..48, 1usize..48, 0usize..48, 0usize..48)
        .prop_map(|(rows, cols, i, j)| (i % rows, j % cols, rows, cols))
}

proptest! {
    #[test]
    fn closed_form_equals_cordic_loop(seed in seed_params(), (i, j, rows, cols) in position()) {
        let cordic = cordic_weight(seed, i, j, rows, cols);
        let closed = closed_form_weight(seed, i, j, rows, cols);
        prop_assert!((cordic - closed).abs() <= 1e-12, "{cordic} vs {closed}");
        let (a, b) = coefficients(seed);
        let (c, s) = basis(i, j, rows, cols);
        prop_assert!((a * c + b * s - closed).abs() <= 1e-12);
    }

    #[test]
    fn weight_gradients_match_central_differences(
        seed in seed_params(), (i, j, rows, cols) in position()
    ) {
        let h = 1e-5;
        let w = |r: f64, theta: f64| cordic_weight(SeedParams { r, theta, ..seed }, i, j, rows, cols);
        let fd_r = (w(seed.r + h, seed.theta) - w(seed.r - h, seed.theta)) / (2.0 * h);
        let fd_t = (w(seed.r, seed.theta + h) - w(seed.r, seed.theta - h)) / (2.0 * h);
        prop_assert!((weight_grad_r(seed, i, j, rows, cols) - fd_r).abs() < 1e-8);
        prop_assert!((weight_grad_theta(seed, i, j, rows, cols) - fd_t).abs() < 1e-8);
    }

    #[test]
    fn amplitude_inverse_inverts(r in 0.0f64..2.0) {
        prop_assert!((amplitude_inverse(amplitude(r), 2.0) - r).abs() < 1e-9);
    }

    #[test]
    fn transition_counts_equal_sequential_loop(
        hi in any::<u64>(), rows in 1usize..20, cols in 1usize..20,
        signal in proptest::collection::vec(-0.5f64..0.5, 400), threshold in 0.0f64..0.4,
    ) {
        let g = |i: usize, j: usize| signal[i * 20 + j];
        let counts = transition_counts(rows, cols, threshold, g);
        prop_assert_eq!(
            apply_transition_counts(hi, counts),
            sequential_transitions(hi, rows, cols, threshold, g)
        );
    }
}

#[test]
fn amplitude_matches_contract_values() {
    for (r, a) in [
        (0.1, 0.0960),
        (0.5, 0.2788),
        (1.0, 0.3138),
        (2.0, 0.3211),
        (1e3, 0.3215),
    ] {
        assert!((amplitude(r) - a).abs() < 5e-5, "A({r}) = {}", amplitude(r));
    }
    let h = 1e-6;
    for r in [0.1, 0.5, 1.0, 2.0] {
        let fd = (amplitude(r + h) - amplitude(r - h)) / (2.0 * h);
        assert!((amplitude_derivative(r) - fd).abs() < 1e-8);
    }
}

#[test]
fn decode_crops_edge_blocks_and_uses_full_block_coordinates() {
    let mut rng = rng(1);
    let layout = BlockLayout::new(11, 7, 4, 3).unwrap();
    let seeds = PaperSeeds::random(&mut rng, layout.num_blocks()).params;
    assert_eq!(seeds.len(), 3 * 3);
    let w = decode_dense(&seeds, &layout).unwrap();
    assert_eq!(w.len(), 11 * 7);
    // Row 10, column 6 is in block (2, 2) at in-block (2, 0) of a 4x3 block.
    assert_eq!(w[10 * 7 + 6], cordic_weight(seeds[8], 2, 0, 4, 3));
    assert!(decode_dense(&seeds[1..], &layout).is_err());
}

#[test]
fn fused_forward_matches_decode_then_matmul() {
    let mut rng = rng(2);
    for (rows, cols, br, bc, batch) in [(9, 13, 4, 4, 3), (1, 17, 8, 8, 2), (16, 1, 8, 8, 5)] {
        let layout = BlockLayout::new(rows, cols, br, bc).unwrap();
        let seeds = PaperSeeds::random(&mut rng, layout.num_blocks()).params;
        let x = random_vec(&mut rng, batch * cols);
        let fused = fused_forward_precise(&seeds, &layout, &x, batch).unwrap();
        let plain = layer_forward(&seeds, &layout, &x, batch).unwrap();
        for (a, b) in fused.iter().zip(&plain) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}

/// `L = sum(y * u)` for a fixed random `u`, so `dL/dy = u`.
#[test]
fn layer_gradients_match_central_differences() {
    let mut rng = rng(3);
    for (rows, cols, br, bc, batch) in [(10, 7, 4, 4, 3), (5, 9, 2, 3, 2), (1, 6, 4, 4, 4)] {
        let layout = BlockLayout::new(rows, cols, br, bc).unwrap();
        let seeds = PaperSeeds::random(&mut rng, layout.num_blocks()).params;
        let x = random_vec(&mut rng, batch * cols);
        let u = random_vec(&mut rng, batch * rows);
        let loss = |seeds: &[SeedParams], x: &[f64]| -> f64 {
            let y = fused_forward_precise(seeds, &layout, x, batch).unwrap();
            y.iter().zip(&u).map(|(y, u)| y * u).sum()
        };
        let grads = layer_backward(&seeds, &layout, &x, &u, batch, 0.1).unwrap();
        let h = 1e-6;
        for s in 0..seeds.len() {
            for (which, analytic) in [(0, grads.coords[2 * s]), (1, grads.coords[2 * s + 1])] {
                let bump = |d: f64| {
                    let mut p = seeds.clone();
                    if which == 0 {
                        p[s].r += d
                    } else {
                        p[s].theta += d
                    }
                    loss(&p, &x)
                };
                let fd = (bump(h) - bump(-h)) / (2.0 * h);
                assert!(
                    (analytic - fd).abs() < 1e-7,
                    "seed {s} param {which}: {analytic} vs {fd}"
                );
            }
        }
        for k in 0..x.len() {
            let bump = |d: f64| {
                let mut p = x.clone();
                p[k] += d;
                loss(&seeds, &p)
            };
            let fd = (bump(h) - bump(-h)) / (2.0 * h);
            assert!((grads.x.as_ref().unwrap()[k] - fd).abs() < 1e-7);
        }
    }
}

#[test]
fn layer_transition_counts_follow_the_weight_gradient() {
    let mut rng = rng(4);
    let layout = BlockLayout::new(6, 10, 4, 4).unwrap();
    let batch = 3;
    let seeds = PaperSeeds::random(&mut rng, layout.num_blocks()).params;
    let x = random_vec(&mut rng, batch * layout.cols);
    let g = random_vec(&mut rng, batch * layout.rows);
    let grads = layer_backward(&seeds, &layout, &x, &g, batch, 0.1).unwrap();
    let signal = grads.signal.expect("transition counts");
    assert_eq!(signal.len(), 4 * seeds.len());
    for (s, counts) in signal.chunks_exact(4).enumerate() {
        let counts: [i32; 4] = std::array::from_fn(|k| counts[k] as i32);
        let (bi, bj) = (s / layout.col_blocks(), s % layout.col_blocks());
        let dw = |i: usize, j: usize| {
            let (row, col) = (bi * 4 + i, bj * 4 + j);
            if row >= layout.rows || col >= layout.cols {
                return 0.0;
            }
            (0..batch)
                .map(|n| g[n * layout.rows + row] * x[n * layout.cols + col])
                .sum()
        };
        let hi = rng.random::<u64>();
        assert_eq!(
            apply_transition_counts(hi, counts),
            sequential_transitions(hi, 4, 4, 0.1, dw)
        );
    }
}

#[test]
fn encoder_recovers_a_generated_block_exactly() {
    let mut rng = rng(5);
    for (rows, cols, br, bc) in [(16, 16, 8, 8), (10, 13, 4, 4), (1, 9, 4, 4), (7, 1, 3, 3)] {
        let layout = BlockLayout::new(rows, cols, br, bc).unwrap();
        let seeds = PaperSeeds::random(&mut rng, layout.num_blocks()).params;
        let w = decode_dense(&seeds, &layout).unwrap();
        let rotations: Vec<u32> = (0..seeds.len()).map(|_| rng.random()).collect();
        let fitted: Vec<SeedParams> = encode_dense(&w, &layout, &rotations, 2.0)
            .unwrap()
            .into_iter()
            .map(|e| e.seed)
            .collect();
        let back = decode_dense(&fitted, &layout).unwrap();
        for (a, b) in w.iter().zip(&back) {
            assert!(
                (a - b).abs() < 1e-9,
                "{a} vs {b} in {rows}x{cols}/{br}x{bc}"
            );
        }
    }
}

#[test]
fn encoder_residual_is_orthogonal_to_the_basis() {
    let mut rng = rng(6);
    let target: Vec<f64> = (0..64).map(|_| rng.random_range(-0.05..0.05)).collect();
    let e = encode_block(8, 8, 0x1234_5678, 2.0, |i, j| Some(target[i * 8 + j]));
    let mut dots = (0.0, 0.0);
    for i in 0..8 {
        for j in 0..8 {
            let (c, s) = basis(i, j, 8, 8);
            let resid = target[i * 8 + j] - closed_form_weight(e.seed, i, j, 8, 8);
            dots.0 += resid * c;
            dots.1 += resid * s;
        }
    }
    assert!(dots.0.abs() < 1e-9 && dots.1.abs() < 1e-9, "{dots:?}");
}
