//! The measured grid and the sampling effort, from environment variables.
//!
//! Criterion owns the command line (`--quick`, filters), so the grid is chosen by
//! environment instead; every variable has a default that runs on a 2-core CPU.

use std::str::FromStr;
use std::time::Duration;

use rbe::RbeKernel;

/// A linear layer's shape, written `d_input x d_output` (`4096x11008` is the up-projection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub d_input: usize,
    pub d_output: usize,
}

impl Shape {
    pub fn label(&self) -> String {
        format!("{}x{}", self.d_input, self.d_output)
    }

    pub fn weights(&self) -> usize {
        self.d_input * self.d_output
    }
}

impl FromStr for Shape {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s
            .split_once('x')
            .ok_or_else(|| format!("shape `{s}` is not `INxOUT`"))?;
        let parse = |v: &str| {
            v.trim()
                .parse::<usize>()
                .map_err(|e| format!("shape `{s}`: {e}"))
        };
        Ok(Self {
            d_input: parse(a)?,
            d_output: parse(b)?,
        })
    }
}

/// Parses a comma-separated list from `var`, or returns `default`.
///
/// # Panics
/// On an unparsable entry: a bench that silently measured a different grid would mislead.
pub fn list<T: FromStr>(var: &str, default: &str) -> Vec<T>
where
    T::Err: std::fmt::Display,
{
    let text = std::env::var(var).unwrap_or_else(|_| default.to_string());
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or_else(|e| panic!("{var}: `{s}`: {e}")))
        .collect()
}

/// Whether the binary runs as a test (`cargo test --benches` passes no `--bench`):
/// criterion then calls every case once, so only a smoke-sized grid is worth running and
/// nothing is written.
pub fn test_mode() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// The first entry of a default list in test mode, the whole list otherwise.
fn smoke_sized(default: &str) -> &str {
    if test_mode() {
        default.split(',').next().unwrap_or(default)
    } else {
        default
    }
}

/// Layer shapes: `RBE_BENCH_SHAPES`, else the bench's `default` (see each bench).
pub fn shapes(default: &str) -> Vec<Shape> {
    list("RBE_BENCH_SHAPES", smoke_sized(default))
}

/// Batch sizes: `RBE_BENCH_BATCHES`.
pub fn batches(default: &str) -> Vec<usize> {
    list("RBE_BENCH_BATCHES", smoke_sized(default))
}

/// RBE block sides: `RBE_BENCH_BLOCKS`.
pub fn blocks(default: &str) -> Vec<usize> {
    list("RBE_BENCH_BLOCKS", default)
}

/// Distinct layers of the stack case: `RBE_BENCH_STACK`, else the bench's `default`; `0`
/// skips the case. In test mode the default shrinks to 2 layers, enough to run the code.
pub fn stack_layers(default: usize) -> usize {
    let default = if test_mode() { default.min(2) } else { default };
    list::<usize>("RBE_BENCH_STACK", &default.to_string())
        .first()
        .copied()
        .unwrap_or(0)
}

/// Whether the paper-format cases are also timed with a fresh decode on every call
/// (variants `*-cold`): `RBE_BENCH_COLD` (`on`, the default, or `off`).
pub fn cold() -> bool {
    list::<String>("RBE_BENCH_COLD", "on")
        .first()
        .is_none_or(|v| v != "off")
}

/// RBE forward kernels: `RBE_BENCH_KERNELS`, `closed-form` and/or `cordic`.
pub fn kernels() -> Vec<RbeKernel> {
    list::<KernelName>("RBE_BENCH_KERNELS", "closed-form,cordic")
        .into_iter()
        .map(|k| k.0)
        .collect()
}

struct KernelName(RbeKernel);

impl FromStr for KernelName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "closed-form" => Ok(Self(RbeKernel::ClosedForm)),
            "cordic" => Ok(Self(RbeKernel::Cordic)),
            other => Err(format!("unknown kernel `{other}` (closed-form, cordic)")),
        }
    }
}

/// The variant name a kernel is reported under.
pub fn kernel_variant(kernel: RbeKernel) -> &'static str {
    match kernel {
        RbeKernel::ClosedForm => "rbe-closed-form",
        RbeKernel::Cordic => "rbe-cordic",
    }
}

/// How hard to sample each case.
#[derive(Debug, Clone, Copy)]
pub struct Effort {
    /// Untimed calls before the first timed one (autotune, shader compilation, caches).
    pub warmup_calls: usize,
    /// Fewest timed calls per case, whatever criterion asks for.
    pub min_calls: usize,
    /// Criterion samples per case (criterion's minimum is 10).
    pub sample_size: usize,
    /// Criterion's target time per case; `--quick` stops earlier once stable.
    pub measurement: Duration,
    /// Distinct input tensors cycled through, so no call sees the previous call's input
    /// still in cache.
    pub inputs: usize,
    /// Whether criterion was given `--quick`.
    pub quick: bool,
}

impl Effort {
    /// `RBE_BENCH_WARMUP`, `RBE_BENCH_MIN_CALLS`, `RBE_BENCH_SAMPLES`, `RBE_BENCH_SECS`,
    /// `RBE_BENCH_INPUTS`.
    pub fn from_env() -> Self {
        let one = |var: &str, default: &str| -> f64 {
            list::<f64>(var, default).first().copied().unwrap_or(0.0)
        };
        Self {
            warmup_calls: one("RBE_BENCH_WARMUP", "2") as usize,
            min_calls: (one("RBE_BENCH_MIN_CALLS", "5") as usize).max(1),
            sample_size: (one("RBE_BENCH_SAMPLES", "10") as usize).max(10),
            measurement: Duration::from_secs_f64(one("RBE_BENCH_SECS", "3").max(0.1)),
            inputs: (one("RBE_BENCH_INPUTS", "4") as usize).max(1),
            quick: std::env::args().any(|a| a == "--quick"),
        }
    }
}
