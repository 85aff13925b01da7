//! Weight generation: `B::rbe_decode` of a whole layer, in weights per second, against
//! streaming the same number of dense f32 weights (`w * 1`: read and write `M x N`).
//!
//! ```text
//! cargo bench --bench weight_generation -- --quick
//! ```
//!
//! Layers never call the decode (their forward is fused); it is what inspection and tests
//! use, and on CubeCL backends with `RbeKernel::Cordic` it runs the paper's per-weight
//! CORDIC loop, so its throughput is the cost of generating weights one by one. Backends
//! without CubeCL kernels (Flex, NdArray) decode with the closed form whichever kernel is
//! asked.
//! `RBE_BENCH_SHAPES`, `RBE_BENCH_BLOCKS`, `RBE_BENCH_KERNELS` and the effort variables
//! apply as in `linear_forward`; `RBE_BENCH_INPUTS` is the number of seed sets rotated.

use burn::tensor::{Tensor, TensorPrimitive};
use criterion::{Criterion, criterion_group, criterion_main};
use rbe::{PaperFormat, RbeKernel, RbeLinear, RbeLinearConfig};

#[allow(dead_code)] // Each bench binary uses a different part of the shared code.
mod common;

use common::backends::{BenchBackend, PerBackend, for_each_selected, sync};
use common::grid::{self, Effort};
use common::results::{Case, Results};
use common::schema::BackendInfo;
use common::timing::{self, measure};

const SHAPES: &str = "1024x1024,4096x4096,4096x11008";
const BLOCKS: &str = "32,8";

/// The dense `[d_output, d_input]` weight of `layer`, straight from the backend op.
fn decode<B: BenchBackend>(layer: &RbeLinear<B>) -> Tensor<B, 2> {
    let w = B::rbe_decode(
        layer.seeds.coords().into_primitive().tensor(),
        layer.seeds.bits().into_primitive(),
        &layer.spec(),
    );
    Tensor::from_primitive(TensorPrimitive::Float(w))
}

fn variant(kernel: RbeKernel) -> &'static str {
    match kernel {
        RbeKernel::ClosedForm => "decode-closed-form",
        RbeKernel::Cordic => "decode-cordic",
    }
}

struct WeightGeneration<'a> {
    criterion: &'a mut Criterion,
    effort: Effort,
}

impl PerBackend for WeightGeneration<'_> {
    fn run<B: BenchBackend>(&mut self, device: B::Device, info: BackendInfo) {
        let effort = self.effort;
        let mut results = Results::new("weight_generation", info, &effort);
        let mut group = timing::group(self.criterion, B::NAME, &effort);
        let wait = || sync::<B>(&device);

        for shape in grid::shapes(SHAPES) {
            let weights = shape.weights() as f64;
            let case = |variant: &str, block| Case {
                variant: variant.into(),
                d_input: shape.d_input,
                d_output: shape.d_output,
                batch: 0,
                block,
            };
            for block in grid::blocks(BLOCKS) {
                // Distinct seed sets, so no call finds the previous call's seeds in cache.
                let layers: Vec<RbeLinear<B>> = (0..effort.inputs)
                    .map(|_| {
                        RbeLinearConfig::new(shape.d_input, shape.d_output)
                            .with_block_size(block)
                            .with_bias(false)
                            .init(&device)
                    })
                    .collect();

                // The baseline streams as many dense weights as one decode writes.
                let stream_case = case("dense-stream", Some(block));
                let dense: Vec<Tensor<B, 2>> = layers.iter().map(decode).collect();
                let dense_stats = measure(&mut group, &stream_case.key(), &effort, wait, |i| {
                    dense[i % dense.len()].clone().mul_scalar(1.0)
                });
                drop(dense);
                if let Some(stats) = dense_stats {
                    let record = results.push(&stream_case, stats, None, None);
                    record.weights_per_second = Some(weights / (stats.median_ns * 1e-9));
                }

                for kernel in grid::kernels() {
                    let layers: Vec<RbeLinear<B>> = layers
                        .iter()
                        .map(|l| {
                            l.clone()
                                .with_format(PaperFormat::new().with_kernel(kernel).into())
                                .expect("a paper-format layer")
                        })
                        .collect();
                    let decode_case = case(variant(kernel), Some(block));
                    let stats = measure(&mut group, &decode_case.key(), &effort, wait, |i| {
                        decode(&layers[i % layers.len()])
                    });
                    if let Some(stats) = stats {
                        let record = results.push(&decode_case, stats, dense_stats, None);
                        record.weights_per_second = Some(weights / (stats.median_ns * 1e-9));
                    }
                }
            }
        }
        group.finish();
        results.write();
    }
}

fn weight_generation(criterion: &mut Criterion) {
    let effort = Effort::from_env();
    for_each_selected(&mut WeightGeneration { criterion, effort });
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = weight_generation
}
criterion_main!(benches);
