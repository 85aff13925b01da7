//! The sign-blueprint kernels ([`super::forward`], [`super::backward`]) against the
//! f64 reference [`crate::formats::sign`] on random seeds and shapes.

use rand::rngs::StdRng;

use super::{backward as sign_backward, forward as sign_forward};
use crate::BlockLayout;
use crate::cube::launch::allocations::take_largest;
use crate::cube::test_utils::TestEnv;
use crate::formats::sign::SIGN_CELLS;
use crate::formats::sign::reference::{backward, forward};
use crate::testing::{Blocks, SignSeeds, assert_close, cases, random_vec, rng};

/// The named sign shapes and 30 random ones, with random batches up to 9: small enough for
/// a software adapter. The seeds' bits beyond each block are set too, so the kernels must
/// ignore them, and `alpha` takes either sign.
fn sign_cases(rng: &mut StdRng) -> Vec<(BlockLayout, usize)> {
    cases(rng, Blocks::AtMost64, 30, 9)
}

#[test]
fn forward_matches_reference() {
    let Some(env) = TestEnv::new() else { return };
    let mut rng = rng(201);
    for (layout, batch) in sign_cases(&mut rng) {
        let seeds = SignSeeds::random(&mut rng, &layout);
        let x = random_vec(&mut rng, batch * layout.cols);
        let (coords, bits) = env.seeds(&seeds.coords, &seeds.bits);
        let xt = env.floats(&x, &[batch, layout.cols]);
        let got = env.read(&sign_forward(
            &env.client,
            env.dtypes,
            &xt,
            &coords,
            &bits,
            &layout,
        ));
        let want = forward(&seeds.params, &layout, &x, batch).unwrap();
        assert_close(&got, &want, 1e-5, &format!("sign y {layout} x{batch}"));
    }
}

#[test]
fn backward_matches_reference() {
    let Some(env) = TestEnv::new() else { return };
    let mut rng = rng(202);
    for (layout, batch) in sign_cases(&mut rng) {
        let seeds = SignSeeds::random(&mut rng, &layout);
        let x = random_vec(&mut rng, batch * layout.cols);
        let g = random_vec(&mut rng, batch * layout.rows);
        let (coords, bits) = env.seeds(&seeds.coords, &seeds.bits);
        let xt = env.floats(&x, &[batch, layout.cols]);
        let gt = env.floats(&g, &[batch, layout.rows]);
        let want = backward(&seeds.params, &layout, &x, &g, batch).unwrap();
        let want_x = want.x.expect("dL/dx");
        let want_signal = want.signal.expect("cell signal");
        let what = format!("{layout} x{batch}");

        let (c, d) = (&env.client, env.dtypes);
        let full = sign_backward(c, d, &xt, &gt, &coords, &bits, &layout, true, true);
        let dx = env.read(full.x.as_ref().expect("grad_x asked for"));
        assert_close(&dx, &want_x, 1e-5, &format!("grad_x {what}"));
        let grad_coords = env.read(&full.coords);
        assert_close(
            &grad_coords,
            &want.coords,
            1e-5,
            &format!("grad (alpha, mu) {what}"),
        );
        // alpha and mu separately: a wrong sign pattern could hide under the larger one.
        let alphas: Vec<f64> = grad_coords.iter().step_by(2).copied().collect();
        let want_alphas: Vec<f64> = want.coords.iter().step_by(2).copied().collect();
        assert_close(&alphas, &want_alphas, 1e-5, &format!("alpha {what}"));
        let signal = env.read(full.signal.as_ref().expect("signal asked for"));
        assert_close(&signal, &want_signal, 1e-5, &format!("signal {what}"));
        // Cropped cells and bits beyond the block are exactly zero.
        for (got, want) in signal.iter().zip(&want_signal) {
            if *want == 0.0 {
                assert_eq!(*got, 0.0, "signal outside the block, {what}");
            }
        }

        // Without the optional outputs the seed gradients are bit for bit the same: the
        // launch is deterministic and does not depend on the flags.
        let bare = sign_backward(c, d, &xt, &gt, &coords, &bits, &layout, false, false);
        assert!(bare.x.is_none() && bare.signal.is_none());
        assert_eq!(env.read(&bare.coords), grad_coords, "{what}");
    }
}

/// Single set bits on both sides of the word boundary, against hand-computed outputs: a
/// kernel that swapped the two words of `hi` or misplaced bit `k` fails here exactly.
#[test]
fn bit_order_is_checked() {
    let Some(env) = TestEnv::new() else { return };
    let layout = BlockLayout::new(8, 8, 8, 8).unwrap();
    let x: Vec<f64> = (0..8).map(|k| f64::from(1u32 << k)).collect();
    for bit in [0, 1, 31, 32, 33, 63] {
        // alpha = 1, mu = 0; the bits tensor holds (hi[63:32], hi[31:0]).
        let hi = 1u64 << bit;
        let (coords, bits) = env.seeds(&[1.0, 0.0], &[(hi >> 32) as u32 as i32, hi as u32 as i32]);
        let xt = env.floats(&x, &[1, 8]);
        let y = env.read(&sign_forward(
            &env.client,
            env.dtypes,
            &xt,
            &coords,
            &bits,
            &layout,
        ));
        // Row `bit / 8` is the only one with a +1 weight, at column `bit % 8`.
        let total = 255.0;
        for (row, got) in y.iter().enumerate() {
            let want = if row == bit / 8 {
                total - 2.0 * (total - x[bit % 8])
            } else {
                -total
            };
            assert_eq!(*got, want, "bit {bit}, row {row}");
        }
    }
}

/// Neither launcher allocates a weight-sized buffer unless the cell signal is asked for.
#[test]
fn no_weight_sized_buffer() {
    let Some(env) = TestEnv::new() else { return };
    let mut rng = rng(203);
    for (rows, cols, br, bc, batch) in [(512, 768, 8, 8, 4), (300, 1000, 4, 16, 2)] {
        let layout = BlockLayout::new(rows, cols, br, bc).unwrap();
        let weight_bytes = rows * cols * 4;
        let seeds = SignSeeds::random(&mut rng, &layout);
        let (coords, bits) = env.seeds(&seeds.coords, &seeds.bits);
        let x = env.floats(&random_vec(&mut rng, batch * cols), &[batch, cols]);
        let g = env.floats(&random_vec(&mut rng, batch * rows), &[batch, rows]);
        let (c, d) = (&env.client, env.dtypes);
        take_largest();
        sign_forward(c, d, &x, &coords, &bits, &layout);
        let forward_bytes = take_largest();
        sign_backward(c, d, &x, &g, &coords, &bits, &layout, true, false);
        let backward_bytes = take_largest();
        for (what, bytes) in [("forward", forward_bytes), ("backward", backward_bytes)] {
            assert!(
                bytes * 8 < weight_bytes,
                "{what} allocated {bytes} B; the weight would be {weight_bytes} B"
            );
        }
        // The check can fail: the cell signal of 64-cell blocks is at least the weight.
        sign_backward(c, d, &x, &g, &coords, &bits, &layout, false, true);
        let signal_bytes = take_largest();
        assert_eq!(signal_bytes, layout.num_blocks() * SIGN_CELLS * 4);
        assert!(signal_bytes >= weight_bytes);
    }
}

/// The straight-through bits on the device against the reference rule, on the named shapes
/// and 30 random ones with cropped edge blocks; latent weights on and beside the thresholds
/// included.
#[test]
fn latent_bits_match_reference() {
    let Some(env) = TestEnv::new() else { return };
    let mut rng = rng(211);
    for (layout, _) in cases(&mut rng, Blocks::AtMost64, 30, 1) {
        let case = crate::testing::LatentCase::random(&mut rng, &layout);
        let n = layout.num_blocks();
        let latent: Vec<f64> = case.latent.iter().map(|&v| f64::from(v)).collect();
        let latent = env.floats(&latent, &[n, 64]);
        let (coords, _) = env.seeds_of_width(&case.coords, &vec![0; 2 * n], 2);
        let bits = super::latent_bits(&env.client, env.dtypes, &latent, &coords, &layout);
        assert_eq!(env.read_ints(&bits), case.sign_bits(&layout), "{layout}");
    }
}
