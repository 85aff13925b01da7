//! Training throughput on one device and on several: the MNIST example's own training path
//! (burn-train's `Learner`, Adam inside `RbeOptimizer`) run for one short epoch per call,
//! on one device, on N under Burn's multi-device strategy (`--devices N`), and on N with a
//! replica per device (`--ddp`).
//!
//! ```text
//! cargo bench --bench data_parallel -- --quick
//! RBE_BENCH_DEVICES=1,2 RBE_BENCH_DP_MODELS=dense,sign-ste cargo bench --bench data_parallel
//! ```
//!
//! - `RBE_BENCH_DEVICES` (`1,2`): device counts. On a CPU backend N devices are the host
//!   listed N times, one replica thread each (`rbe_examples::backend::devices`); they share
//!   the cores, so this measures what splitting the batch across threads buys on this host,
//!   not a second device. GPU backends use their first N GPUs.
//! - `RBE_BENCH_DP_MODELS` (`dense,paper,sign-ste,ternary-ste`): the MNIST classifier
//!   784-256-10 dense, or with both layers `RbeLinear` 8x8 blocks: the paper format with
//!   state transitions, the sign blueprint and the ternary format trained straight-through.
//! - `RBE_BENCH_DP_IMAGES` (`4096`): training images per epoch; batch 64 per device, so an
//!   epoch takes `images / (64 N)` steps. Validation runs on 64 test images.
//!
//! Each record is one optimizer step (the call's time over its steps, the per-epoch
//! validation and `Learner` start-up included) with `devices` and `ddp` set; **x dense** is
//! against the dense model on the same devices. MNIST comes from `$RBE_MNIST_DIR` or
//! `../shared/data/mnist`, as in the example. Results go to
//! `benches/results/data_parallel-<backend>-<machine>.json`.

use std::path::PathBuf;

use burn::backend::Autodiff;
use criterion::{Criterion, criterion_group, criterion_main};
use rbe::BitTraining;
use rbe_examples::mnist::data::{DataDir, Mnist};
use rbe_examples::mnist::model::{ModelConfig, ModelKind, RbeFormat};
use rbe_examples::mnist::training::{Placement, TrainingConfig, train_on};

#[allow(dead_code)] // Each bench binary uses a different part of the shared code.
mod common;

use common::backends::{BenchBackend, PerBackend, for_each_selected};
use common::grid::{self, Effort};
use common::results::{Case, Results};
use common::schema::BackendInfo;
use common::timing::{self, Stats, measure};

const BATCH: usize = 64;
const PIXELS: usize = 784;
const CLASSES: usize = 10;
const BLOCK: usize = 8;

/// One model of the grid: its name in records and its configuration.
fn model(name: &str) -> ModelConfig {
    let rbe = |format| {
        ModelConfig::new(ModelKind::Rbe)
            .with_block_size(BLOCK)
            .with_format(format)
    };
    match name {
        "dense" => ModelConfig::new(ModelKind::Dense),
        "paper" => rbe(RbeFormat::Paper),
        "sign-ste" => rbe(RbeFormat::SignBlueprint).with_bit_training(BitTraining::StraightThrough),
        "ternary-ste" => rbe(RbeFormat::Ternary).with_bit_training(BitTraining::StraightThrough),
        other => panic!(
            "RBE_BENCH_DP_MODELS: unknown model `{other}` (dense, paper, sign-ste, ternary-ste)"
        ),
    }
}

/// The record's variant: `dense` or `rbe-<model>`.
fn variant(name: &str) -> String {
    if name == "dense" {
        name.into()
    } else {
        format!("rbe-{name}")
    }
}

struct DataParallel<'a> {
    criterion: &'a mut Criterion,
    effort: Effort,
    mnist: Mnist,
}

impl PerBackend for DataParallel<'_> {
    fn run<B: BenchBackend>(&mut self, device: B::Device, info: BackendInfo) {
        let effort = self.effort;
        let kind = match B::NAME {
            "flex" => rbe_examples::backend::BackendKind::Flex,
            "ndarray" => rbe_examples::backend::BackendKind::Ndarray,
            "wgpu" => rbe_examples::backend::BackendKind::Wgpu,
            "cuda" => rbe_examples::backend::BackendKind::Cuda,
            other => panic!("data_parallel: no backend kind for `{other}`"),
        };
        let images = grid::list::<usize>("RBE_BENCH_DP_IMAGES", "4096")
            .first()
            .copied()
            .unwrap_or(4096);
        let mut results = Results::new("data_parallel", info, &effort);
        let mut group = timing::group(self.criterion, B::NAME, &effort);
        let scratch = std::env::temp_dir().join(format!("rbe-bench-dp-{}", std::process::id()));
        for devices in grid::list::<usize>("RBE_BENCH_DEVICES", "1,2") {
            let modes: &[bool] = if devices > 1 {
                &[false, true]
            } else {
                &[false]
            };
            for &ddp in modes {
                let placement = match rbe_examples::backend::devices::<B>(kind, devices, &device) {
                    Ok(devices) => Placement { devices, ddp },
                    Err(err) => {
                        eprintln!("[{}] skipping {devices} devices: {err}", B::NAME);
                        continue;
                    }
                };
                let steps = images.div_ceil(BATCH * devices).max(1);
                let mut dense: Option<Stats> = None;
                for name in
                    grid::list::<String>("RBE_BENCH_DP_MODELS", "dense,paper,sign-ste,ternary-ste")
                {
                    let config = TrainingConfig::new(model(&name))
                        .with_epochs(1)
                        .with_batch_size(BATCH)
                        .with_train_limit(Some(images))
                        .with_test_limit(Some(BATCH));
                    let suffix = if ddp { "ddp" } else { "devices" };
                    let case = Case {
                        variant: format!("{}-{suffix}{devices}", variant(&name)),
                        d_input: PIXELS,
                        d_output: CLASSES,
                        batch: BATCH * devices,
                        block: (name != "dense").then_some(BLOCK),
                    };
                    let dir: PathBuf = scratch.join(case.key().replace('/', "_"));
                    let call = measure(
                        &mut group,
                        &case.key(),
                        &effort,
                        || {},
                        |_| {
                            train_on::<Autodiff<B>>(&config, &self.mnist, &dir, &placement)
                                .expect("the bench's training runs")
                        },
                    );
                    let Some(call) = call else { continue };
                    // One record per optimizer step: the call took `steps` of them.
                    let per_step = Stats {
                        median_ns: call.median_ns / steps as f64,
                        p10_ns: call.p10_ns / steps as f64,
                        p90_ns: call.p90_ns / steps as f64,
                        samples: call.samples,
                    };
                    let against = if name == "dense" { None } else { dense };
                    let record = results.push(&case, per_step, against, None);
                    record.model = Some(format!("mlp-{PIXELS}-256-{CLASSES}"));
                    record.devices = Some(devices);
                    record.ddp = Some(ddp);
                    if name == "dense" {
                        dense = Some(per_step);
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&scratch);
        group.finish();
        results.write();
    }
}

fn data_parallel(criterion: &mut Criterion) {
    let effort = Effort::from_env();
    let mnist = Mnist::load(&DataDir::resolve(None)).unwrap_or_else(|err| {
        panic!("data_parallel needs MNIST ($RBE_MNIST_DIR or ../shared/data/mnist): {err}")
    });
    for_each_selected(&mut DataParallel {
        criterion,
        effort,
        mnist,
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots().sample_size(10);
    targets = data_parallel
}
criterion_main!(benches);
