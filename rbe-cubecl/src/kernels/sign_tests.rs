//! The sign-blueprint kernels ([`super::sign_forward`], [`super::sign_backward`]) against the
//! f64 reference [`crate::sign_blueprint`] on random seeds and shapes.

use rand::Rng;
use rand::rngs::StdRng;

use super::launch::allocations::take_largest;
use super::test_utils::*;
use super::{sign_backward, sign_forward};
use crate::BlockLayout;
use crate::sign_blueprint::{SIGN_CELLS, SignParams, backward, forward};
use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

/// Seeds with random 64-bit patterns (bits beyond the block set too, so the kernels must
/// ignore them) and `alpha`, `mu` exact in f32, `alpha` of either sign.
fn random_sign_seeds(rng: &mut StdRng, n: usize) -> Vec<SignParams> {
    (0..n)
        .map(|_| SignParams {
            bits: rng.random(),
            alpha: f64::from(rng.random_range(-2.0f32..2.0)),
            mu: f64::from(rng.random_range(-1.0f32..1.0)),
        })
        .collect()
}

/// `(coords [n, 2] = (alpha, mu), bits [n, 2] = (hi[63:32], hi[31:0]))` as the layers store
/// them.
fn upload(env: &TestEnv, seeds: &[SignParams]) -> (TensorHandle<R>, TensorHandle<R>) {
    let n = seeds.len();
    let coords: Vec<f64> = seeds.iter().flat_map(|s| [s.alpha, s.mu]).collect();
    let bits: Vec<i32> = seeds
        .iter()
        .flat_map(|s| [(s.bits >> 32) as u32 as i32, s.bits as u32 as i32])
        .collect();
    let handle = env.client.create_from_slice(i32::as_bytes(&bits));
    (
        env.floats(&coords, &[n, 2]),
        TensorHandle::new_contiguous(vec![n, 2], handle, env.dtypes.int),
    )
}

/// Fixed shapes (full and cropped 8x8, 4x16, 2x32, 1x64, 64x1, 3x5 and 7x9 blocks, single
/// rows and columns, a batch past one staging round) and random ones, all small enough for
/// a software adapter.
fn sign_cases(rng: &mut StdRng) -> Vec<(BlockLayout, usize)> {
    let mut out: Vec<(BlockLayout, usize)> = [
        (8, 8, 8, 8, 1),
        (64, 64, 8, 8, 4),
        (70, 130, 8, 8, 9),
        (37, 53, 4, 16, 3),
        (19, 70, 2, 32, 5),
        (5, 130, 1, 64, 2),
        (9, 65, 1, 64, 1),
        (70, 3, 64, 1, 2),
        (33, 17, 3, 5, 7),
        (50, 61, 7, 9, 6),
        (1, 1, 8, 8, 1),
        (1, 37, 8, 8, 3),
        (29, 1, 4, 16, 2),
        (20, 30, 8, 8, 33),
        (17, 23, 3, 5, 40),
    ]
    .into_iter()
    .map(|(r, c, br, bc, b)| (BlockLayout::new(r, c, br, bc).unwrap(), b))
    .collect();
    while out.len() < 30 {
        let br = rng.random_range(1..=16);
        let bc = rng.random_range(1..=SIGN_CELLS / br);
        let layout =
            BlockLayout::new(rng.random_range(1..=70), rng.random_range(1..=70), br, bc).unwrap();
        out.push((layout, rng.random_range(1..=9)));
    }
    out
}

#[test]
fn forward_matches_reference() {
    let Some(env) = TestEnv::new() else { return };
    let mut rng = rng(201);
    for (layout, batch) in sign_cases(&mut rng) {
        let seeds = random_sign_seeds(&mut rng, layout.num_blocks());
        let x = random_vec(&mut rng, batch * layout.cols);
        let (coords, bits) = upload(&env, &seeds);
        let xt = env.floats(&x, &[batch, layout.cols]);
        let got = env.read(&sign_forward(
            &env.client,
            env.dtypes,
            &xt,
            &coords,
            &bits,
            &layout,
        ));
        let want = forward(&seeds, &layout, &x, batch).unwrap();
        assert_close(&got, &want, 1e-5, &format!("sign y {layout} x{batch}"));
    }
}

#[test]
fn backward_matches_reference() {
    let Some(env) = TestEnv::new() else { return };
    let mut rng = rng(202);
    for (layout, batch) in sign_cases(&mut rng) {
        let n = layout.num_blocks();
        let seeds = random_sign_seeds(&mut rng, n);
        let x = random_vec(&mut rng, batch * layout.cols);
        let g = random_vec(&mut rng, batch * layout.rows);
        let (coords, bits) = upload(&env, &seeds);
        let xt = env.floats(&x, &[batch, layout.cols]);
        let gt = env.floats(&g, &[batch, layout.rows]);
        let want = backward(&seeds, &layout, &x, &g, batch).unwrap();
        let want_coords: Vec<f64> = want
            .grad_alpha
            .iter()
            .zip(&want.grad_mu)
            .flat_map(|(a, m)| [*a, *m])
            .collect();
        let want_signal: Vec<f64> = want.cell_signal.iter().flatten().copied().collect();
        let what = format!("{layout} x{batch}");

        let (c, d) = (&env.client, env.dtypes);
        let full = sign_backward(c, d, &xt, &gt, &coords, &bits, &layout, true, true);
        let dx = env.read(full.grad_x.as_ref().expect("grad_x asked for"));
        assert_close(&dx, &want.grad_x, 1e-5, &format!("grad_x {what}"));
        let grad_coords = env.read(&full.grad_coords);
        assert_close(
            &grad_coords,
            &want_coords,
            1e-5,
            &format!("grad (alpha, mu) {what}"),
        );
        // alpha and mu separately: a wrong sign pattern could hide under the larger one.
        let alphas: Vec<f64> = grad_coords.iter().step_by(2).copied().collect();
        assert_close(&alphas, &want.grad_alpha, 1e-5, &format!("alpha {what}"));
        let signal = env.read(full.cell_signal.as_ref().expect("signal asked for"));
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
        assert!(bare.grad_x.is_none() && bare.cell_signal.is_none());
        assert_eq!(env.read(&bare.grad_coords), grad_coords, "{what}");
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
        let seed = SignParams {
            bits: 1u64 << bit,
            alpha: 1.0,
            mu: 0.0,
        };
        let (coords, bits) = upload(&env, &[seed]);
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
        let seeds = random_sign_seeds(&mut rng, layout.num_blocks());
        let (coords, bits) = upload(&env, &seeds);
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
