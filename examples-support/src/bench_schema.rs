//! The JSON files under `benches/results/`: written by the benches, read by
//! `examples/bench_report`. Both use this module, so the format has one definition.

use serde::{Deserialize, Serialize};

/// Bumped whenever a field changes meaning; the report skips files of other versions.
pub const SCHEMA_VERSION: u32 = 1;

/// One file: one bench, one backend, one machine. Later runs replace records with the
/// same `case` and keep the others, so a grid can be measured in pieces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFile {
    pub schema: u32,
    /// `linear_forward`, `training_step` or `weight_generation`.
    pub bench: String,
    pub machine: Machine,
    pub backend: BackendInfo,
    pub records: Vec<Record>,
}

/// The host the numbers came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    /// Stable name used in file names: `RBE_BENCH_MACHINE`, else derived from the CPU.
    pub label: String,
    pub hostname: String,
    /// `model name` of /proc/cpuinfo.
    pub cpu: String,
    /// Logical CPUs available to the process.
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
}

/// The Burn backend and the device it ran on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackendInfo {
    /// `flex`, `ndarray`, `wgpu` or `cuda`.
    pub name: String,
    /// Adapter or GPU name; `host CPU` for Flex and NdArray.
    pub device: String,
    /// How `Record::memory` was obtained on this backend.
    pub memory_probe: String,
}

/// One measured case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Unique key within the file, e.g. `4096x11008/batch32/b8/rbe-closed-form`.
    pub case: String,
    /// `dense`, `rbe-closed-form`, `rbe-cordic`, `dense-stream`, `rbe-decode`.
    pub variant: String,
    /// Input features (the MLP's input for `training_step`).
    pub d_input: usize,
    /// Output features (the MLP's output for `training_step`).
    pub d_output: usize,
    /// Rows per call; 0 where there is no input (weight generation).
    pub batch: usize,
    /// RBE block side; `None` for dense variants.
    pub block: Option<usize>,
    /// Median wall time of one call, device synchronised before and after it.
    pub median_ns: f64,
    pub p10_ns: f64,
    pub p90_ns: f64,
    /// Timed calls behind the percentiles (warm-up excluded).
    pub samples: usize,
    /// The dense baseline of the same case, measured in the same run.
    pub dense_median_ns: Option<f64>,
    /// `dense_median_ns / median_ns`: above 1 means faster than dense.
    pub speedup_vs_dense: Option<f64>,
    /// Weights generated per second (`weight_generation` only).
    pub weights_per_second: Option<f64>,
    pub memory: Option<MemoryRecord>,
    /// `git describe --always --dirty` of the measured tree.
    pub git_rev: String,
    /// Seconds since the Unix epoch at the end of the measurement.
    pub unix_time: u64,
    /// Whether criterion ran in `--quick` mode (fewer samples).
    pub quick: bool,
    /// The 1-minute load average when the case finished: near or above `cores`, other
    /// processes were competing for the CPU and the times are inflated.
    pub load_1m: Option<f64>,
    /// Multiply-adds of one call (`linear_forward`): `batch * d_input * d_output` for dense,
    /// the closed form's projections plus combination for RBE (docs/math.md §3). Absent in
    /// files written before it existed.
    #[serde(default)]
    pub macs: Option<f64>,
    /// RBE's compute bound (`linear_forward`, RBE variants): its multiply-adds at the dense
    /// GEMM's rate measured in the same run.
    #[serde(default)]
    pub compute_bound: Option<ComputeBound>,
    /// The model trained (`training_step`): `mlp-784-256-10` or `wide-<width>`.
    #[serde(default)]
    pub model: Option<String>,
    /// Whether the RBE layers produced state transitions (`training_step`, RBE variants).
    #[serde(default)]
    pub transitions: Option<bool>,
    /// Memory of training (`training_step`). Absent in files written before it existed.
    #[serde(default)]
    pub training_memory: Option<TrainingMemoryRecord>,
    /// Devices trained on (`data_parallel`).
    #[serde(default)]
    pub devices: Option<usize>,
    /// Whether each device kept its own replica (`data_parallel`).
    #[serde(default)]
    pub ddp: Option<bool>,
}

/// What RBE's forward would take if it ran its multiply-adds as fast as the backend's dense
/// GEMM runs its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComputeBound {
    /// The best dense multiply-add rate of the run (multiply-adds per second): dense
    /// `batch * d_input * d_output` per call divided by its median time.
    pub dense_macs_per_second: f64,
    /// The dense case that rate was measured on, e.g. `4096x4096/batch256/dense`.
    pub dense_rate_case: String,
    /// `macs / dense_macs_per_second`, in nanoseconds.
    pub bound_ns: f64,
    /// `median_ns / bound_ns`: 1 means RBE runs at the dense GEMM's rate; 4 means 4x
    /// slower than its bound.
    pub ratio: f64,
}

/// Memory of training one model, as far as the backend lets it be seen (on Flex and NdArray
/// the Rust heap, so host-side optimizer state counts too; on CubeCL backends device memory
/// only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingMemoryRecord {
    /// Bytes held after the timed steps minus before the model was built: parameters,
    /// optimizer state (Adam's moments) and training-only state (the latent weights of
    /// straight-through sign bits, Bop's per-cell averages).
    pub resident_bytes: u64,
    /// Upper bound of the extra bytes one further step allocated at its peak (activations,
    /// gradients, the updated parameters).
    pub step_peak_bytes: u64,
}

/// Memory of one forward call, as far as the backend lets it be seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryRecord {
    /// Bytes the layer's parameters occupy on the device (in use after init minus before).
    pub param_bytes: u64,
    /// Upper bound of the extra bytes a forward call had allocated at its peak, output
    /// included (see `BackendInfo::memory_probe` for how it is bounded).
    pub forward_peak_bytes: u64,
    /// `4 * d_input * d_output`: what a materialised f32 weight alone would take.
    pub dense_weight_bytes: u64,
}

/// The model-level inference bench's file, `model_inference-<backend>-<machine>.json`:
/// whole transformers, dense and compressed, generating and reading prompts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRunFile {
    pub schema: u32,
    /// Always `model_inference`.
    pub bench: String,
    pub machine: Machine,
    pub backend: BackendInfo,
    /// The fastest this process read host memory (see [`StreamRate`]); the generation
    /// rows' memory bound divides by it. `None` on GPU backends.
    pub host_read: Option<StreamRate>,
    /// The best dense multiply-add rate of a large matmul on this backend in this run; the
    /// prompt rows' compute bound divides by it.
    pub dense_macs_per_second: f64,
    pub records: Vec<ModelRecord>,
}

/// How fast this process could read memory: the best of several passes summing a buffer
/// far larger than the caches, on every core.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamRate {
    pub bytes_per_second: f64,
    pub buffer_bytes: u64,
}

/// The architecture of a benched model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelShape {
    /// `readme` (the README's transformer) or `d1024` (projections dominate).
    pub name: String,
    pub n_layers: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub n_heads: usize,
    pub vocab_size: usize,
    pub context: usize,
}

/// One model, one projection format, one workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    /// `<model>/<workload>/<variant>`, unique in the file.
    pub case: String,
    pub model: ModelShape,
    /// `dense`, `burn-q4`, `paper-b32`, `sign-b8`, `ternary-b8`, ...
    pub variant: String,
    /// `generate` (one token at a time on a key/value cache) or `prompt` (a whole batch of
    /// windows in one forward).
    pub workload: String,
    /// Sequences per call.
    pub batch: usize,
    /// `generate`: positions already cached before the timed tokens; `prompt`: 0.
    pub cached: usize,
    /// `generate`: tokens generated per timed call; `prompt`: window length.
    pub tokens_per_call: usize,
    /// Per token for `generate`, per call for `prompt`.
    pub median_ns: f64,
    pub p10_ns: f64,
    pub p90_ns: f64,
    pub samples: usize,
    /// All sequences of the batch together.
    pub tokens_per_second: f64,
    pub dense_tokens_per_second: Option<f64>,
    pub speedup_vs_dense: Option<f64>,
    /// Stored bytes of the block projections, and of the same projections dense.
    pub projection_bytes: u64,
    pub dense_projection_bytes: u64,
    /// Stored bytes of the whole model.
    pub model_bytes: u64,
    /// Backend memory held after the model was built (parameters and whatever a layer
    /// keeps beside them).
    pub resident_bytes: u64,
    /// Upper bound of the extra memory one timed call allocated at its peak, key/value
    /// cache included.
    pub call_peak_bytes: u64,
    /// Where the time goes, per the same unit as `median_ns`.
    pub breakdown: Breakdown,
    /// `None` where the backend gives no rate to bound it with (generation on a GPU).
    pub bound: Option<ModelBound>,
    pub git_rev: String,
    pub unix_time: u64,
    pub quick: bool,
    pub load_1m: Option<f64>,
}

/// The time of one call split by component. The projections and the attention products
/// are timed on their own with the shapes the call gives them; the rest (embeddings, norms,
/// head, residual adds, cache appends, sampling) is the whole minus those two.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Breakdown {
    pub projections_ns: f64,
    pub attention_ns: f64,
    pub rest_ns: f64,
}

/// What the call cannot beat on this machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelBound {
    /// `memory` (`generate`: the stored parameters and the key/value cache read once at
    /// [`ModelRunFile::host_read`]) or `compute` (`prompt`: the multiply-adds at
    /// [`ModelRunFile::dense_macs_per_second`]).
    pub kind: String,
    pub bound_ns: f64,
    /// `median_ns / bound_ns`: 1 is the machine's limit.
    pub ratio: f64,
}
