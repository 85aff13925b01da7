//! The ternary kernels ([`super::forward`], [`super::backward`]) against the f64 reference
//! on random seeds (every cell's code random, beyond the block too) and shapes.

use rand::rngs::StdRng;

use super::{backward as ternary_backward, forward as ternary_forward};
use crate::BlockLayout;
use crate::cube::launch::allocations::take_largest;
use crate::cube::test_utils::TestEnv;
use crate::formats::ternary::reference::{backward, forward};
use crate::formats::ternary::{TERNARY_BIT_WORDS, TERNARY_CELLS};
use crate::testing::{Blocks, TernarySeeds, assert_close, cases, random_vec, rng};

/// The named shapes and 30 random ones, with random batches up to 9 (both the matvec and
/// the tiled forward).
fn ternary_cases(rng: &mut StdRng) -> Vec<(BlockLayout, usize)> {
    cases(rng, Blocks::AtMost64, 30, 9)
}

#[test]
fn forward_matches_reference() {
    let Some(env) = TestEnv::new() else { return };
    let mut rng = rng(501);
    for (layout, batch) in ternary_cases(&mut rng) {
        let seeds = TernarySeeds::random(&mut rng, &layout);
        let x = random_vec(&mut rng, batch * layout.cols);
        let (coords, bits) = env.seeds_of_width(&seeds.coords, &seeds.bits, TERNARY_BIT_WORDS);
        let xt = env.floats(&x, &[batch, layout.cols]);
        let got = env.read(&ternary_forward(
            &env.client,
            env.dtypes,
            &xt,
            &coords,
            &bits,
            &layout,
        ));
        let want = forward(&seeds.packed, &layout, &x, batch).unwrap();
        assert_close(&got, &want, 1e-5, &format!("ternary y {layout} x{batch}"));
    }
}

#[test]
fn backward_matches_reference() {
    let Some(env) = TestEnv::new() else { return };
    let mut rng = rng(502);
    for (layout, batch) in ternary_cases(&mut rng) {
        let seeds = TernarySeeds::random(&mut rng, &layout);
        let x = random_vec(&mut rng, batch * layout.cols);
        let g = random_vec(&mut rng, batch * layout.rows);
        let (coords, bits) = env.seeds_of_width(&seeds.coords, &seeds.bits, TERNARY_BIT_WORDS);
        let xt = env.floats(&x, &[batch, layout.cols]);
        let gt = env.floats(&g, &[batch, layout.rows]);
        let want = backward(&seeds.packed, &layout, &x, &g, batch).unwrap();
        let what = format!("{layout} x{batch}");
        let (c, d) = (&env.client, env.dtypes);
        let full = ternary_backward(c, d, &xt, &gt, &coords, &bits, &layout, true, true);
        let dx = env.read(full.x.as_ref().expect("grad_x asked for"));
        assert_close(
            &dx,
            want.x.as_ref().unwrap(),
            1e-5,
            &format!("grad_x {what}"),
        );
        let grad_coords = env.read(&full.coords);
        assert_close(&grad_coords, &want.coords, 1e-5, &format!("alpha {what}"));
        let signal = env.read(full.signal.as_ref().expect("signal asked for"));
        let want_signal = want.signal.as_ref().unwrap();
        assert_close(&signal, want_signal, 1e-5, &format!("signal {what}"));
        for (got, want) in signal.iter().zip(want_signal) {
            if *want == 0.0 {
                assert_eq!(*got, 0.0, "signal outside the block, {what}");
            }
        }
        let bare = ternary_backward(c, d, &xt, &gt, &coords, &bits, &layout, false, false);
        assert!(bare.x.is_none() && bare.signal.is_none());
        assert_eq!(env.read(&bare.coords), grad_coords, "{what}");
    }
}

/// Single non-zero cells at both ends of every device word, +1 and -1, against
/// hand-computed outputs: a kernel that misplaced a word or a code fails here exactly.
#[test]
fn code_order_is_checked() {
    let Some(env) = TestEnv::new() else { return };
    let layout = BlockLayout::new(8, 8, 8, 8).unwrap();
    let x: Vec<f64> = (0..8).map(|k| f64::from(1u32 << k)).collect();
    for cell in [0, 1, 15, 16, 17, 31, 32, 47, 48, 63] {
        for (code, level) in [(1, 1.0), (2, -1.0)] {
            let mut words = [0i32; 4];
            words[cell / 16] = code << (2 * (cell % 16));
            let (coords, bits) = env.seeds_of_width(&[2.0, 0.0], &words, 4);
            for batch in [1, 5] {
                let xs: Vec<f64> = (0..batch).flat_map(|_| x.iter().copied()).collect();
                let xt = env.floats(&xs, &[batch, 8]);
                let y = env.read(&ternary_forward(
                    &env.client,
                    env.dtypes,
                    &xt,
                    &coords,
                    &bits,
                    &layout,
                ));
                for (at, got) in y.iter().enumerate() {
                    let row = at % 8;
                    let want = if row == cell / 8 {
                        2.0 * level * x[cell % 8]
                    } else {
                        0.0
                    };
                    assert_eq!(*got, want, "cell {cell}, code {code}, row {row}");
                }
            }
        }
    }
}

/// Neither launcher allocates a weight-sized buffer unless the cell signal is asked for.
#[test]
fn no_weight_sized_buffer() {
    let Some(env) = TestEnv::new() else { return };
    let mut rng = rng(503);
    for (rows, cols, br, bc, batch) in [(512, 768, 8, 8, 4), (300, 1000, 4, 16, 2)] {
        let layout = BlockLayout::new(rows, cols, br, bc).unwrap();
        let weight_bytes = rows * cols * 4;
        let seeds = TernarySeeds::random(&mut rng, &layout);
        let (coords, bits) = env.seeds_of_width(&seeds.coords, &seeds.bits, TERNARY_BIT_WORDS);
        let x = env.floats(&random_vec(&mut rng, batch * cols), &[batch, cols]);
        let g = env.floats(&random_vec(&mut rng, batch * rows), &[batch, rows]);
        let (c, d) = (&env.client, env.dtypes);
        take_largest();
        ternary_forward(c, d, &x, &coords, &bits, &layout);
        let forward_bytes = take_largest();
        ternary_backward(c, d, &x, &g, &coords, &bits, &layout, true, false);
        let backward_bytes = take_largest();
        for (what, bytes) in [("forward", forward_bytes), ("backward", backward_bytes)] {
            assert!(
                bytes * 8 < weight_bytes,
                "{what} allocated {bytes} B; the weight would be {weight_bytes} B"
            );
        }
        ternary_backward(c, d, &x, &g, &coords, &bits, &layout, false, true);
        assert_eq!(take_largest(), layout.num_blocks() * TERNARY_CELLS * 4);
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
        let (coords, _) = env.seeds_of_width(&case.coords, &vec![0; 4 * n], 4);
        let bits = super::latent_bits(&env.client, env.dtypes, &latent, &coords, &layout);
        assert_eq!(env.read_ints(&bits), case.ternary_bits(&layout), "{layout}");
    }
}
