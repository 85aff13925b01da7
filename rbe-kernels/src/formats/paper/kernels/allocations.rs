//! The kernels never allocate a weight-sized buffer: checked by recording every buffer the
//! launchers create (all go through `launch::empty`) on shapes where `d_output x d_input`
//! dwarfs the activations.

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use crate::BlockLayout;
    use crate::cube::launch::allocations::take_largest;
    use crate::cube::test_utils::TestEnv;
    use crate::formats::paper::kernels::*;
    use crate::testing::{PaperSeeds, random_vec, rng};

    #[test]
    fn no_weight_sized_buffer() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(109);
        for (rows, cols, block, batch) in [(512, 768, 32, 4), (300, 1000, 8, 2)] {
            let layout = BlockLayout::square(rows, cols, block).unwrap();
            let weight_bytes = rows * cols * 4;
            let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
            let (coords, bits) = env.seeds(&seeds.coords, &seeds.bits);
            let x = env.floats(&random_vec(&mut rng, batch * cols), &[batch, cols]);
            let g = env.floats(&random_vec(&mut rng, batch * rows), &[batch, rows]);
            let (c, d) = (&env.client, env.dtypes);
            take_largest();

            let mut largest = Vec::new();
            fused_closed_form_matmul(c, d, &x, &coords, &bits, &layout);
            largest.push(("closed form forward", take_largest()));
            fused_cordic_matmul(c, d, &x, &coords, &bits, &layout);
            largest.push(("cordic forward", take_largest()));
            backward(c, d, &x, &g, &coords, &bits, &layout, true, Some(0.1));
            largest.push(("backward", take_largest()));
            for (what, bytes) in largest {
                assert!(
                    bytes * 8 < weight_bytes,
                    "{what} allocated {bytes} B; the weight would be {weight_bytes} B"
                );
            }

            // The check can fail: decoding must allocate exactly the weight.
            cordic_decode(c, d, &coords, &bits, &layout);
            assert_eq!(take_largest(), weight_bytes);
        }
    }
}
