//! Forward pass: dense `burn::nn::Linear` against `RbeLinear` (closed-form and CORDIC
//! kernels of the paper format, and for blocks of at most 64 cells the sign-blueprint and
//! ternary formats, variants `rbe-sign` and `rbe-ternary`), same backend, same run.
//!
//! The stack case (variants `rbe-closed-form-stack` and `rbe-cordic-stack`, `model` =
//! `stack-<n>` in the JSON) runs `n` distinct paper-format layers of the same shape and
//! block one after another on the same input, as a transformer's forward cycles through its
//! layers, and reports the time per layer (one stack call / `n`) beside the single layer,
//! which is called again and again and so always finds whatever the layer keeps between
//! calls. Its `dense` time is the single dense layer's (why: at the stack case below).
//!
//! Every RBE case also gets its compute bound: its multiply-adds (docs/math.md §3, see
//! `common/bound.rs`) at the best dense multiply-add rate measured in the same run on the
//! same backend (the JSON names that dense case), and the ratio of its time to that bound.
//!
//! ```text
//! cargo bench --bench linear_forward -- --quick
//! RBE_BENCH_BACKENDS=flex,wgpu RBE_BENCH_SHAPES=4096x4096 RBE_BENCH_BATCHES=1,256 \
//!     cargo bench --bench linear_forward -- --quick
//! ```
//!
//! Grid variables (comma lists): `RBE_BENCH_BACKENDS` (`flex`, the default; `wgpu`, Burn's
//! default fusion backend; `ndarray`, legacy; `cuda`), `RBE_BENCH_SHAPES`
//! (`d_input x d_output`), `RBE_BENCH_BATCHES`, `RBE_BENCH_BLOCKS`, `RBE_BENCH_KERNELS`;
//! effort: `RBE_BENCH_WARMUP`, `RBE_BENCH_MIN_CALLS`, `RBE_BENCH_SAMPLES`, `RBE_BENCH_SECS`,
//! `RBE_BENCH_INPUTS`; `RBE_BENCH_COLD` (`on`/`off`): the paper-format cases also timed with a
//! fresh decode on every call (variants `*-cold`, as right after an optimizer step); `RBE_BENCH_STACK`: layers of the stack case, `0` to skip it (default
//! 96 on Flex and NdArray, 0 on the GPU backends). Default grid: shapes 1024x1024 and
//! 4096x4096 on Flex and NdArray (plus 4096x11008 on the GPU backends), batches 1, 32 and
//! 256, blocks 32 and 8.
//!
//! ```text
//! # the forward targets' layer with its stack (a criterion filter would also drop the dense
//! # and single-layer cases the stack is compared with)
//! RBE_BENCH_BACKENDS=flex RBE_BENCH_SHAPES=4096x4096 RBE_BENCH_BATCHES=1 RBE_BENCH_BLOCKS=32 \
//!     RBE_BENCH_KERNELS=closed-form cargo bench --bench linear_forward -- --quick
//! ```
//!
//! Results go to `benches/results/linear_forward-<backend>-<machine>.json`.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use rbe::{
    BitTraining, PaperFormat, RbeLinear, RbeLinearConfig, SeedFormat, SignFormat, TernaryFormat,
};

#[allow(dead_code)] // Each bench binary uses a different part of the shared code.
mod common;

use common::backends::{BenchBackend, PerBackend, for_each_selected, sync};
use common::bound;
use common::grid::{self, Effort, Shape};
use common::results::{Case, Results};
use common::schema::{BackendInfo, MemoryRecord};
use common::timing::{self, Stats, measure};

/// Default shapes on the CPU backends: the dense 4096x11008 product costs seconds per
/// batch-256 call on 2 cores and adds nothing the 4096x4096 case does not show.
const CPU_SHAPES: &str = "1024x1024,4096x4096";
/// Default shapes on the GPU backends.
const GPU_SHAPES: &str = "1024x1024,4096x4096,4096x11008";
const BATCHES: &str = "1,32,256";
const BLOCKS: &str = "32,8";
/// Layers of the stack case on the CPU backends: the linear layers a 16-block transformer's
/// forward runs (q, k, v, o, up, down per block). The GPU backends skip it unless asked:
/// a stack call costs 96 single calls, and on a software adapter those take minutes.
const CPU_STACK: usize = 96;
/// The first layer's RNG seed in the stack; layer `i` uses `STACK_RNG_SEED + i`.
const STACK_RNG_SEED: u64 = 0x5eed_0000;

struct LinearForward<'a> {
    criterion: &'a mut Criterion,
    effort: Effort,
}

/// Builds a layer and returns it with the device bytes its parameters took.
fn with_param_bytes<B: BenchBackend, L>(device: &B::Device, init: impl FnOnce() -> L) -> (L, u64) {
    let before = B::bytes_in_use(device);
    let layer = init();
    let after = B::bytes_in_use(device);
    (layer, after.saturating_sub(before))
}

/// `n` paper-format layers of one shape and block, each drawn from its own RNG seed.
///
/// # Panics
/// If two layers got the same seeds: whatever a layer keeps between calls, keyed by its
/// seeds, would then serve several layers and the stack would measure less than it claims.
fn distinct_layers<B: BenchBackend>(
    shape: Shape,
    block: usize,
    n: usize,
    device: &B::Device,
) -> Vec<RbeLinear<B>> {
    let layers: Vec<RbeLinear<B>> = (0..n)
        .map(|i| {
            B::seed(device, STACK_RNG_SEED + i as u64);
            let layer = RbeLinearConfig::new(shape.d_input, shape.d_output)
                .with_block_size(block)
                .init::<B>(device);
            let _ = (layer.seeds.coords(), layer.bias.as_ref().map(|b| b.val()));
            layer
        })
        .collect();
    let fingerprints: HashSet<u64> = layers
        .iter()
        .map(|layer| {
            let mut hasher = DefaultHasher::new();
            for data in [
                layer.seeds.coords().into_data(),
                layer.seeds.bits().into_data(),
            ] {
                data.as_bytes().hash(&mut hasher);
            }
            hasher.finish()
        })
        .collect();
    assert_eq!(
        fingerprints.len(),
        n,
        "the stack's {n} layers of {} (block {block}) do not all have distinct seeds",
        shape.label()
    );
    layers
}

fn memory_of<B: BenchBackend, O>(
    device: &B::Device,
    shape: Shape,
    param_bytes: u64,
    forward: impl FnOnce() -> O,
) -> MemoryRecord {
    let (out, peak) = B::peak_during(device, forward);
    drop(out);
    MemoryRecord {
        param_bytes,
        forward_peak_bytes: peak,
        dense_weight_bytes: 4 * shape.weights() as u64,
    }
}

impl PerBackend for LinearForward<'_> {
    fn run<B: BenchBackend>(&mut self, device: B::Device, info: BackendInfo) {
        let effort = self.effort;
        let mut results = Results::new("linear_forward", info, &effort);
        let mut group = timing::group(self.criterion, B::NAME, &effort);
        let kernels = grid::kernels();
        let cold = grid::cold();
        let blocks = grid::blocks(BLOCKS);
        let batches = grid::batches(BATCHES);
        let wait = || sync::<B>(&device);

        // Flex and NdArray run each op when it is called; the fusion backends queue ops and
        // may never run one whose output nobody reads.
        let eager = matches!(B::NAME, "flex" | "ndarray");
        let (shapes, stack_layers) = match eager {
            true => (CPU_SHAPES, grid::stack_layers(CPU_STACK)),
            false => (GPU_SHAPES, grid::stack_layers(0)),
        };
        for shape in grid::shapes(shapes) {
            // Burn initialises parameters lazily, on first use: touch them here so their
            // bytes count as parameters and not as the first forward's allocation.
            // A dense weight larger than one buffer binding cannot run at all (lavapipe
            // allows 128 MiB; 4096x11008 needs 172 MiB), while RBE never binds a weight.
            let weight_bytes = 4 * shape.weights() as u64;
            let dense = match B::max_binding_bytes(&device) {
                Some(limit) if weight_bytes > limit => {
                    eprintln!(
                        "[{}] {}: dense skipped: its weight ({weight_bytes} B) exceeds the \
                         largest buffer binding of this device ({limit} B)",
                        B::NAME,
                        shape.label()
                    );
                    None
                }
                _ => Some(with_param_bytes::<B, _>(&device, || {
                    let layer = LinearConfig::new(shape.d_input, shape.d_output).init::<B>(&device);
                    let _ = (layer.weight.val(), layer.bias.as_ref().map(|b| b.val()));
                    layer
                })),
            };
            let rbe: Vec<(usize, RbeLinear<B>, u64)> = blocks
                .iter()
                .map(|&block| {
                    let (layer, bytes) = with_param_bytes::<B, _>(&device, || {
                        let layer = RbeLinearConfig::new(shape.d_input, shape.d_output)
                            .with_block_size(block)
                            .init::<B>(&device);
                        let _ = (layer.seeds.coords(), layer.bias.as_ref().map(|b| b.val()));
                        layer
                    });
                    (block, layer, bytes)
                })
                .collect();
            // The sign blueprint and the ternary format hold one or two bits per cell: blocks
            // of at most 64 cells.
            let bit_formats: Vec<(&str, usize, RbeLinear<B>, u64)> = blocks
                .iter()
                .filter(|&&block| block * block <= 64)
                .flat_map(|&block| {
                    let formats: [(&str, SeedFormat); 2] = [
                        (
                            "rbe-sign",
                            SignFormat::new(BitTraining::StraightThrough).into(),
                        ),
                        (
                            "rbe-ternary",
                            TernaryFormat::new(BitTraining::StraightThrough).into(),
                        ),
                    ];
                    formats.map(|(variant, format)| {
                        let (layer, bytes) = with_param_bytes::<B, _>(&device, || {
                            let layer = RbeLinearConfig::new(shape.d_input, shape.d_output)
                                .with_block_size(block)
                                .with_format(format)
                                .init::<B>(&device);
                            let _ = (layer.seeds.coords(), layer.bias.as_ref().map(|b| b.val()));
                            layer
                        });
                        (variant, block, layer, bytes)
                    })
                })
                .collect();
            let stacks: Vec<(usize, Vec<RbeLinear<B>>)> = match stack_layers {
                0 => Vec::new(),
                n => blocks
                    .iter()
                    .map(|&block| (block, distinct_layers::<B>(shape, block, n, &device)))
                    .collect(),
            };

            for &batch in &batches {
                let inputs: Vec<Tensor<B, 2>> = (0..effort.inputs)
                    .map(|_| Tensor::random([batch, shape.d_input], Distribution::Default, &device))
                    .collect();
                let input = |i: usize| inputs[i % inputs.len()].clone();
                let case = |variant: &str, block: Option<usize>| Case {
                    variant: variant.into(),
                    d_input: shape.d_input,
                    d_output: shape.d_output,
                    batch,
                    block,
                };

                let dense_case = case("dense", None);
                let forward = |layer: &Linear<B>, i| layer.forward(input(i));
                let dense_stats = dense.as_ref().and_then(|(dense, dense_params)| {
                    let stats = measure(&mut group, &dense_case.key(), &effort, wait, |i| {
                        forward(dense, i)
                    })?;
                    let mem =
                        memory_of::<B, _>(&device, shape, *dense_params, || forward(dense, 0));
                    results.push(&dense_case, stats, None, Some(mem)).macs =
                        Some(bound::dense_macs(batch, shape.d_input, shape.d_output));
                    Some(stats)
                });

                // The single-layer times, for the stack cases' progress lines.
                let mut single: Vec<(usize, &str, Stats)> = Vec::new();
                for (block, layer, params) in &rbe {
                    for &kernel in &kernels {
                        let layer = layer
                            .clone()
                            .with_format(PaperFormat::new().with_kernel(kernel).into())
                            .expect("a paper-format layer");
                        let rbe_case = case(grid::kernel_variant(kernel), Some(*block));
                        let stats = measure(&mut group, &rbe_case.key(), &effort, wait, |i| {
                            layer.forward(input(i))
                        });
                        if let Some(stats) = stats {
                            single.push((*block, grid::kernel_variant(kernel), stats));
                            let mem = memory_of::<B, _>(&device, shape, *params, || {
                                layer.forward(input(0))
                            });
                            results.push(&rbe_case, stats, dense_stats, Some(mem)).macs =
                                Some(bound::rbe_macs(&layer.layout(), batch));
                        }
                        if !cold {
                            continue;
                        }
                        // Seeds just updated: new settings give the seeds a fresh decode
                        // cache, as every optimizer step does, so each call decodes again.
                        let format = PaperFormat::new().with_kernel(kernel);
                        let cold_case = case(
                            &format!("{}-cold", grid::kernel_variant(kernel)),
                            Some(*block),
                        );
                        let stats = measure(&mut group, &cold_case.key(), &effort, wait, |i| {
                            layer
                                .clone()
                                .with_format(format.into())
                                .expect("a paper-format layer")
                                .forward(input(i))
                        });
                        if let Some(stats) = stats {
                            results.push(&cold_case, stats, dense_stats, None).macs =
                                Some(bound::rbe_macs(&layer.layout(), batch));
                        }
                    }
                }
                for (variant, block, layer, params) in &bit_formats {
                    let bit_case = case(variant, Some(*block));
                    let stats = measure(&mut group, &bit_case.key(), &effort, wait, |i| {
                        layer.forward(input(i))
                    });
                    if let Some(stats) = stats {
                        let mem =
                            memory_of::<B, _>(&device, shape, *params, || layer.forward(input(0)));
                        // Every weight is used once per row, as in the dense product.
                        results.push(&bit_case, stats, dense_stats, Some(mem)).macs =
                            Some(bound::dense_macs(batch, shape.d_input, shape.d_output));
                    }
                }
                for (block, layers) in &stacks {
                    for &kernel in &kernels {
                        let layers: Vec<RbeLinear<B>> = layers
                            .iter()
                            .map(|l| {
                                l.clone()
                                    .with_format(PaperFormat::new().with_kernel(kernel).into())
                                    .expect("a paper-format layer")
                            })
                            .collect();
                        let variant = grid::kernel_variant(kernel);
                        let stack_case = case(&format!("{variant}-stack"), Some(*block));
                        let stats = measure(&mut group, &stack_case.key(), &effort, wait, |i| {
                            let x = input(i);
                            // On an eager backend each output is dropped at once, so the
                            // allocator reuses one buffer as in the single-layer case instead
                            // of faulting in `n` fresh ones (400 MiB at batch 256).
                            let mut kept = Vec::with_capacity(if eager { 0 } else { layers.len() });
                            for layer in &layers {
                                let out = layer.forward(x.clone());
                                if !eager {
                                    kept.push(out);
                                }
                            }
                            kept
                        });
                        let Some(stats) = stats else { continue };
                        let per_layer = stats.per(layers.len());
                        // No dense stack: 96 distinct dense 4096x4096 layers would hold 6 GiB.
                        // The single dense layer stands in for it: its 64 MiB weight already
                        // exceeds every CPU cache, so each call streams it from memory as a
                        // stack of distinct weights would. For shapes whose weight fits a
                        // cache this flatters dense.
                        let record = results.push(&stack_case, per_layer, dense_stats, None);
                        record.macs = Some(bound::rbe_macs(&layers[0].layout(), batch));
                        record.model = Some(format!("stack-{}", layers.len()));
                        if let Some((_, _, one)) =
                            single.iter().find(|(b, v, _)| b == block && *v == variant)
                        {
                            eprintln!(
                                "[{}] {}: {} distinct layers, {} per layer = {:.2}x the single \
                                 layer ({})",
                                B::NAME,
                                stack_case.key(),
                                layers.len(),
                                timing::human(per_layer.median_ns),
                                per_layer.median_ns / one.median_ns,
                                timing::human(one.median_ns),
                            );
                        }
                    }
                }
            }
        }
        group.finish();
        results.apply_compute_bound();
        results.write();
    }
}

fn linear_forward(criterion: &mut Criterion) {
    let effort = Effort::from_env();
    for_each_selected(&mut LinearForward { criterion, effort });
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = linear_forward
}
criterion_main!(benches);
