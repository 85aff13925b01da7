//! Whole-model inference: the examples' transformer (`rbe_examples::transformer`), dense
//! against every projection format, same backend, same run.
//!
//! Two workloads per model and format:
//! - `generate`: batch 1, greedy, one token at a time on a key/value cache
//!   ([`Gpt::forward_cached`]) after a cached prompt; the figure is per token. The next
//!   token stays on the device (argmax fed back), as a server streaming tokens would.
//! - `prompt`: batch 32 windows in one forward ([`Gpt::forward`]); the figure is per call.
//!
//! Two models: `readme`, the README's transformer (2 blocks, d_model 128, context 64), and
//! `d1024` (4 blocks, d_model 1024, d_ff 4096, 16 heads), where the projections dominate.
//! Weights are freshly initialised: the speed of a format does not depend on what its
//! weights say. Formats: `dense` (Burn's `Linear`), `burn-q4` (Burn's own block-32 4-bit
//! quantization of the dense weights, dequantized on every call as Burn 0.21 runs it),
//! `paper-b32` (closed form), `sign-b8`, `ternary-b8`.
//!
//! Each row also has:
//! - where the time goes: the projections and the attention products timed alone with the
//!   shapes the call gives them; the rest (embeddings, norms, head, adds, cache appends) is
//!   the whole minus those two;
//! - its physical bound: `generate` must read every stored parameter and the cache once
//!   per token, at the best host read rate measured in this run (CPU backends only);
//!   `prompt` must do its multiply-adds, at the best dense matmul rate of this run;
//! - memory: what the backend holds once the model is built and has run once, and the peak
//!   of one timed call above that.
//!
//! ```text
//! cargo bench --bench model_inference -- --quick
//! RBE_BENCH_BACKENDS=wgpu RBE_BENCH_MODELS=readme cargo bench --bench model_inference -- --quick
//! ```
//!
//! Grid variables: `RBE_BENCH_BACKENDS` (`flex` by default), `RBE_BENCH_MODELS` (`readme`,
//! `d1024`; both by default on the CPU, `readme` on GPU backends), `RBE_BENCH_VARIANTS`,
//! `RBE_BENCH_WORKLOADS` (`generate`, `prompt`); effort as in the other benches. Results go
//! to `benches/results/model_inference-<backend>-<machine>.json`, which
//! `examples/bench_report` turns into `model_inference.md` and `model_inference.png`.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use burn::tensor::{Distribution, Int, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use rbe::BitTraining;
use rbe_examples::layer::Layer;
use rbe_examples::quantized_linear::{QuantGrid, QuantizedLinear, WeightQuant};
use rbe_examples::transformer::kv_cache::KvCache;
use rbe_examples::transformer::model::{Gpt, GptConfig, ProjectionKind, causal_attention};

#[allow(dead_code)] // Each bench binary uses a different part of the shared code.
mod common;

use common::backends::{BenchBackend, PerBackend, for_each_selected, sync};
use common::grid::{self, Effort};
use common::machine;
use common::matmul_rate::{self, SIDE};
use common::results::OUT_ENV;
use common::schema::{
    BackendInfo, Breakdown, ModelBound, ModelRecord, ModelRunFile, ModelShape, SCHEMA_VERSION,
};
use common::stream;
use common::timing::{self, Stats, human, measure};

/// Characters of the Shakespeare corpus's vocabulary, `<unk>` included.
const VOCAB: usize = 66;
/// Tokens cached before the timed generation starts.
const PROMPT_TOKENS: usize = 16;
/// Tokens generated per timed call.
const GENERATED_TOKENS: usize = 32;
/// Windows per prompt call, and their length.
const PROMPT_BATCH: usize = 32;
const PROMPT_WINDOW: usize = 64;
/// Burn's quantization block, as in the compression curve.
const QUANT_BLOCK: usize = 32;

fn shapes() -> Vec<ModelShape> {
    let shape = |name: &str, n_layers, d_model, n_heads, context| ModelShape {
        name: name.into(),
        n_layers,
        d_model,
        d_ff: 4 * d_model,
        n_heads,
        vocab_size: VOCAB,
        context,
    };
    vec![
        shape("readme", 2, 128, 4, 64),
        shape("d1024", 4, 1024, 16, 128),
    ]
}

/// A projection format, as named in the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Dense,
    BurnQ4,
    PaperB32,
    SignB8,
    TernaryB8,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Self::Dense => "dense",
            Self::BurnQ4 => "burn-q4",
            Self::PaperB32 => "paper-b32",
            Self::SignB8 => "sign-b8",
            Self::TernaryB8 => "ternary-b8",
        }
    }

    fn projections(self) -> ProjectionKind {
        match self {
            Self::Dense | Self::BurnQ4 => ProjectionKind::Dense,
            Self::PaperB32 => ProjectionKind::Rbe {
                block_size: 32,
                residual_rank: 0,
                transitions: false,
            },
            Self::SignB8 => ProjectionKind::SignBlueprint {
                block_size: 8,
                bit_training: BitTraining::StraightThrough,
            },
            Self::TernaryB8 => ProjectionKind::Ternary {
                block_size: 8,
                bit_training: BitTraining::StraightThrough,
            },
        }
    }

    /// The model, built on `device` from the backend's RNG.
    fn build<B: BenchBackend>(self, shape: &ModelShape, device: &B::Device) -> Gpt<B> {
        let config = GptConfig::new(
            shape.vocab_size,
            shape.context,
            shape.d_model,
            shape.n_layers,
            shape.n_heads,
            self.projections(),
        );
        let model = config
            .init::<B>(device)
            .expect("a valid model configuration");
        if self != Self::BurnQ4 {
            return model;
        }
        let quant = WeightQuant::new(QuantGrid::Q4f, QUANT_BLOCK).expect("a valid quantization");
        model
            .try_map_layers(false, |name, layer| match layer {
                Layer::Dense(linear) => {
                    let [d_input, d_output] = linear.weight.dims();
                    let axis = quant
                        .block_axis(d_input, d_output)
                        .ok_or_else(|| format!("{name}: no side splits into blocks"))?;
                    Ok(Layer::Quantized(QuantizedLinear::quantize(
                        linear, &quant, axis,
                    )))
                }
                other => Ok(other),
            })
            .unwrap_or_else(|e: String| panic!("{e}"))
    }
}

impl FromStr for Variant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ALL_VARIANTS
            .iter()
            .copied()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown variant `{s}`"))
    }
}

const ALL_VARIANTS: [Variant; 5] = [
    Variant::Dense,
    Variant::BurnQ4,
    Variant::PaperB32,
    Variant::SignB8,
    Variant::TernaryB8,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Generate,
    Prompt,
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "generate" => Ok(Self::Generate),
            "prompt" => Ok(Self::Prompt),
            other => Err(format!("unknown workload `{other}` (generate, prompt)")),
        }
    }
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::Generate => "generate",
            Self::Prompt => "prompt",
        }
    }
}

/// One timed case's inputs: what a call feeds the model, and the shapes its parts see.
struct Job<B: BenchBackend> {
    workload: Workload,
    /// `generate`: the cached prompt and the token that follows it.
    cache: Option<(KvCache<B>, Tensor<B, 2, Int>)>,
    /// `prompt`: the windows.
    windows: Option<Tensor<B, 2, Int>>,
}

impl<B: BenchBackend> Job<B> {
    fn new(workload: Workload, model: &Gpt<B>, shape: &ModelShape, device: &B::Device) -> Self {
        let tokens = |batch, len| {
            Tensor::<B, 2, Int>::random(
                [batch, len],
                Distribution::Uniform(0.0, shape.vocab_size as f64),
                device,
            )
        };
        match workload {
            Workload::Generate => {
                let mut cache = model.kv_cache();
                let logits = model
                    .forward_cached(tokens(1, PROMPT_TOKENS), &mut cache)
                    .expect("the prompt fits the context");
                let next = logits
                    .slice([0..1, PROMPT_TOKENS - 1..PROMPT_TOKENS])
                    .argmax(2)
                    .reshape([1, 1]);
                Self {
                    workload,
                    cache: Some((cache, next)),
                    windows: None,
                }
            }
            Workload::Prompt => Self {
                workload,
                cache: None,
                windows: Some(tokens(PROMPT_BATCH, PROMPT_WINDOW.min(shape.context))),
            },
        }
    }

    fn batch(&self) -> usize {
        match self.workload {
            Workload::Generate => 1,
            Workload::Prompt => PROMPT_BATCH,
        }
    }

    /// Positions each call processes per sequence.
    fn tokens_per_call(&self) -> usize {
        match (&self.cache, &self.windows) {
            (Some(_), _) => GENERATED_TOKENS,
            (_, Some(windows)) => windows.dims()[1],
            _ => unreachable!("a job has a cache or windows"),
        }
    }

    /// One timed call: the generated tokens, or the prompt's logits.
    fn call(&self, model: &Gpt<B>) -> Tensor<B, 3> {
        match (&self.cache, &self.windows) {
            (Some((cache, next)), _) => {
                let mut cache = cache.clone();
                let mut token = next.clone();
                let mut logits = None;
                for _ in 0..GENERATED_TOKENS {
                    let out = model
                        .forward_cached(token, &mut cache)
                        .expect("the generation fits the context");
                    token = out.clone().argmax(2).reshape([1, 1]);
                    logits = Some(out);
                }
                logits.expect("at least one token")
            }
            (_, Some(windows)) => model.forward(windows.clone()),
            _ => unreachable!("a job has a cache or windows"),
        }
    }

    /// Keys cached when the projections and attention run, on average over the call.
    fn mean_past(&self) -> usize {
        match self.workload {
            Workload::Generate => PROMPT_TOKENS + GENERATED_TOKENS / 2,
            Workload::Prompt => 0,
        }
    }
}

struct ModelInference<'a> {
    criterion: &'a mut Criterion,
    effort: Effort,
}

/// `(d_input, d_output)` of the `i`-th entry of [`Gpt::projections`]: per block the
/// attention's four `d x d` maps, then the MLP's up and down projections.
fn projection_dims(shape: &ModelShape, i: usize) -> (usize, usize) {
    match i % 6 {
        4 => (shape.d_model, shape.d_ff),
        5 => (shape.d_ff, shape.d_model),
        _ => (shape.d_model, shape.d_model),
    }
}

/// Multiply-adds of one prompt call over `rows` positions: every projection (the paper
/// format's closed form does fewer, docs/math.md §3; the bit formats and Burn's quantized
/// weights do a dense product), the attention products and the head.
fn prompt_macs<B: BenchBackend>(
    model: &Gpt<B>,
    variant: Variant,
    shape: &ModelShape,
    rows: usize,
) -> f64 {
    let projections: f64 = model
        .projections()
        .iter()
        .enumerate()
        .map(|(i, layer)| match (variant, layer) {
            (Variant::PaperB32, Layer::Rbe(rbe)) => common::bound::rbe_macs(&rbe.layout(), rows),
            _ => {
                let (d_input, d_output) = projection_dims(shape, i);
                common::bound::dense_macs(rows, d_input, d_output)
            }
        })
        .sum();
    let seq = PROMPT_WINDOW.min(shape.context) as f64;
    let attention = 2.0 * rows as f64 * seq * shape.d_model as f64 * shape.n_layers as f64;
    let head = common::bound::dense_macs(rows, shape.d_model, shape.vocab_size);
    projections + attention + head
}

/// Bytes one generated token must read: every stored parameter except the embedding
/// tables (one row of each), and the cache's keys and values.
fn generate_bytes(model_bytes: usize, shape: &ModelShape, past: usize) -> f64 {
    let embeddings = (shape.vocab_size + shape.context - 2) * shape.d_model * 4;
    let cache = past * 2 * shape.d_model * shape.n_layers * 4;
    (model_bytes.saturating_sub(embeddings) + cache) as f64
}

impl PerBackend for ModelInference<'_> {
    fn run<B: BenchBackend>(&mut self, device: B::Device, info: BackendInfo) {
        let effort = self.effort;
        let eager = matches!(B::NAME, "flex" | "ndarray");
        let smoke = grid::test_mode();
        let default_models = if eager && !smoke {
            "readme,d1024"
        } else {
            "readme"
        };
        let models: Vec<String> = grid::list("RBE_BENCH_MODELS", default_models);
        let default_variants = if smoke {
            "dense,sign-b8"
        } else {
            "dense,burn-q4,paper-b32,sign-b8,ternary-b8"
        };
        let variants: Vec<Variant> = grid::list("RBE_BENCH_VARIANTS", default_variants);
        let workloads: Vec<Workload> = grid::list("RBE_BENCH_WORKLOADS", "generate,prompt");
        let host_read = eager.then(stream::host_read_rate);
        let rate = matmul_rate::best::<B>(&device);
        if let Some(read) = &host_read {
            eprintln!(
                "[{}] host read rate {:.1} GB/s",
                B::NAME,
                read.bytes_per_second / 1e9
            );
        }
        eprintln!(
            "[{}] dense matmul {SIDE}^3: {:.1} G multiply-adds/s",
            B::NAME,
            rate / 1e9
        );
        let mut file = ModelRunFile {
            schema: SCHEMA_VERSION,
            bench: "model_inference".into(),
            machine: machine::detect(),
            backend: info,
            host_read: host_read.clone(),
            dense_macs_per_second: rate,
            records: Vec::new(),
        };
        let mut group = timing::group(self.criterion, &format!("{}-model", B::NAME), &effort);
        // One process, one commit: asked of git once, not once per record.
        let git_rev = machine::git_rev();
        let wait = || sync::<B>(&device);

        for shape in shapes().into_iter().filter(|s| models.contains(&s.name)) {
            for &workload in &workloads {
                let mut dense: Option<f64> = None;
                for &variant in &variants {
                    let key = format!("{}/{}/{}", shape.name, workload.name(), variant.name());
                    B::seed(&device, 42);
                    let before = B::bytes_in_use(&device);
                    let model = variant.build::<B>(&shape, &device);
                    let job = Job::new(workload, &model, &shape, &device);
                    drop(job.call(&model));
                    wait();
                    let resident = B::bytes_in_use(&device).saturating_sub(before);

                    let Some(stats) =
                        measure(&mut group, &key, &effort, wait, |_| job.call(&model))
                    else {
                        continue;
                    };
                    let per_call = job.tokens_per_call();
                    let stats = match workload {
                        Workload::Generate => stats.per(per_call),
                        Workload::Prompt => stats,
                    };
                    let (_, call_peak) = B::peak_during(&device, || job.call(&model));
                    let breakdown = breakdown::<B>(
                        &mut group, &key, &effort, &model, &shape, &job, &device, stats,
                    );
                    let tokens_per_call = match workload {
                        Workload::Generate => 1,
                        Workload::Prompt => job.batch() * per_call,
                    };
                    let tokens_per_second = tokens_per_call as f64 / (stats.median_ns * 1e-9);
                    if variant == Variant::Dense {
                        dense = Some(tokens_per_second);
                    }
                    let bytes = model.bytes();
                    let bound = match workload {
                        Workload::Generate => host_read.as_ref().map(|read| {
                            let bytes = generate_bytes(bytes.total, &shape, job.mean_past());
                            bound_of("memory", bytes / read.bytes_per_second, stats)
                        }),
                        Workload::Prompt => {
                            let rows = job.batch() * per_call;
                            Some(bound_of(
                                "compute",
                                prompt_macs(&model, variant, &shape, rows) / rate,
                                stats,
                            ))
                        }
                    };
                    let record = ModelRecord {
                        case: key.clone(),
                        model: shape.clone(),
                        variant: variant.name().into(),
                        workload: workload.name().into(),
                        batch: job.batch(),
                        cached: match workload {
                            Workload::Generate => PROMPT_TOKENS,
                            Workload::Prompt => 0,
                        },
                        tokens_per_call: per_call,
                        median_ns: stats.median_ns,
                        p10_ns: stats.p10_ns,
                        p90_ns: stats.p90_ns,
                        samples: stats.samples,
                        tokens_per_second,
                        dense_tokens_per_second: dense,
                        speedup_vs_dense: dense.map(|d| tokens_per_second / d),
                        projection_bytes: bytes.projections as u64,
                        dense_projection_bytes: bytes.dense_projections as u64,
                        model_bytes: bytes.total as u64,
                        resident_bytes: resident,
                        call_peak_bytes: call_peak,
                        breakdown,
                        bound,
                        git_rev: git_rev.clone(),
                        unix_time: SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs()),
                        quick: effort.quick,
                        load_1m: machine::load_average(),
                    };
                    report(B::NAME, &record);
                    file.records.push(record);
                }
            }
        }
        group.finish();
        write(file);
    }
}

fn bound_of(kind: &str, bound_seconds: f64, stats: Stats) -> ModelBound {
    let bound_ns = bound_seconds * 1e9;
    ModelBound {
        kind: kind.into(),
        bound_ns,
        ratio: stats.median_ns / bound_ns,
    }
}

/// Times the projections and the attention products of one call on their own, with the
/// shapes the call gives them, in the unit of `whole` (one token of a generation, or one
/// prompt call).
#[allow(clippy::too_many_arguments)]
fn breakdown<B: BenchBackend>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    key: &str,
    effort: &Effort,
    model: &Gpt<B>,
    shape: &ModelShape,
    job: &Job<B>,
    device: &B::Device,
    whole: Stats,
) -> Breakdown {
    let wait = || sync::<B>(device);
    let (batch, seq) = match job.workload {
        Workload::Generate => (1, 1),
        Workload::Prompt => (job.batch(), job.tokens_per_call()),
    };
    let random = |dims: [usize; 3]| Tensor::<B, 3>::random(dims, Distribution::Default, device);
    let x_model = random([batch, seq, shape.d_model]);
    let x_ff = random([batch, seq, shape.d_ff]);
    let projections = model.projections();
    let projection_stats = measure(group, &format!("{key}/projections"), effort, wait, |_| {
        projections
            .iter()
            .enumerate()
            .map(
                |(i, layer)| match projection_dims(shape, i).0 == shape.d_model {
                    true => layer.forward(x_model.clone()),
                    false => layer.forward(x_ff.clone()),
                },
            )
            .collect::<Vec<_>>()
    });
    let (heads, d_head) = (shape.n_heads, shape.d_model / shape.n_heads);
    let past = job.mean_past();
    let q = Tensor::<B, 4>::random([batch, heads, seq, d_head], Distribution::Default, device);
    let kv = Tensor::<B, 4>::random(
        [batch, heads, past + seq, d_head],
        Distribution::Default,
        device,
    );
    let attention_stats = measure(group, &format!("{key}/attention"), effort, wait, |_| {
        (0..shape.n_layers)
            .map(|_| causal_attention(q.clone(), kv.clone(), kv.clone(), past))
            .collect::<Vec<_>>()
    });
    let ns = |s: Option<Stats>| s.map_or(0.0, |s| s.median_ns);
    let (projections_ns, attention_ns) = (ns(projection_stats), ns(attention_stats));
    Breakdown {
        projections_ns,
        attention_ns,
        rest_ns: (whole.median_ns - projections_ns - attention_ns).max(0.0),
    }
}

fn report(backend: &str, r: &ModelRecord) {
    let mut line = format!(
        "[{backend}] {}: {} per {}, {:.1} tokens/s",
        r.case,
        human(r.median_ns),
        if r.workload == "generate" {
            "token"
        } else {
            "call"
        },
        r.tokens_per_second
    );
    if let Some(s) = r.speedup_vs_dense {
        line.push_str(&format!(", {s:.2}x dense"));
    }
    if let Some(b) = &r.bound {
        line.push_str(&format!(", {:.1}x its {} bound", b.ratio, b.kind));
    }
    let b = &r.breakdown;
    line.push_str(&format!(
        "; projections {}, attention {}, rest {}; projections {:.1} MiB of {:.1} MiB dense, \
         resident {:.1} MiB, call peak {:.1} MiB",
        human(b.projections_ns),
        human(b.attention_ns),
        human(b.rest_ns),
        r.projection_bytes as f64 / MIB,
        r.dense_projection_bytes as f64 / MIB,
        r.resident_bytes as f64 / MIB,
        r.call_peak_bytes as f64 / MIB,
    ));
    eprintln!("{line}");
}

const MIB: f64 = 1024.0 * 1024.0;

/// Merges into the backend's file (same cases replaced, others kept) and writes it.
fn write(mut file: ModelRunFile) {
    if grid::test_mode() {
        eprintln!("test mode (no `--bench`): results not written");
        return;
    }
    if file.records.is_empty() {
        eprintln!("[{}] nothing measured, nothing written", file.backend.name);
        return;
    }
    let dir = std::env::var_os(OUT_ENV).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/results"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("create the results folder");
    let path = dir.join(format!(
        "{}-{}-{}.json",
        file.bench, file.backend.name, file.machine.label
    ));
    let old = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str::<ModelRunFile>(&text).ok())
        .filter(|old| old.schema == SCHEMA_VERSION);
    if let Some(old) = old {
        let kept: Vec<ModelRecord> = old
            .records
            .into_iter()
            .filter(|r| !file.records.iter().any(|n| n.case == r.case))
            .collect();
        file.records.splice(0..0, kept);
    }
    let text = serde_json::to_string_pretty(&file).expect("serialise results");
    std::fs::write(&path, text + "\n").expect("write results");
    eprintln!("wrote {}", path.display());
}

fn model_inference(criterion: &mut Criterion) {
    let effort = Effort::from_env();
    for_each_selected(&mut ModelInference { criterion, effort });
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = model_inference
}
criterion_main!(benches);
