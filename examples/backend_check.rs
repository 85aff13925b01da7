//! Runs the RBE op (forward, backward, decode, transition counts) of one backend on random
//! shapes against the f64 reference and prints one JSON line. It exits with status 1 when an
//! error exceeds `--tolerance` (the unit tests' 1e-5) or a transition count differs.
//!
//! ```sh
//! cargo run --example backend_check -- --backend flex
//! cargo run --example backend_check -- --backend wgpu --kernel cordic
//! cargo run --example backend_check -- --backend wgpu-cube
//! cargo run --release --features cuda --example backend_check -- --backend cuda
//! ```
//!
//! Backends:
//! - `flex`: `burn::backend::Flex`, Burn 0.21's recommended CPU backend (the native CPU kernels).
//! - `wgpu`: `burn::backend::Wgpu`, i.e. `Fusion<CubeBackend<WgpuRuntime, ..>>` with Burn's
//!   default features: the RBE op is recorded on the fusion stream and runs the CubeCL kernels.
//! - `wgpu-cube`: `CubeBackend<WgpuRuntime, f32, i32, u32>` used directly, fusion off.
//! - `ndarray`: `burn::backend::NdArray` (legacy CPU backend; the native CPU kernels).
//! - `cuda`: `burn::backend::Cuda` (fusion on); needs the `cuda` feature and a GPU.

use clap::{Parser, ValueEnum};
use rbe::testing::{VerifyReport, verify_backend};
use rbe::{RbeBackend, RbeKernel};
use rbe_examples::backend::{BackendJob, BackendKind, dispatch};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KernelArg {
    ClosedForm,
    Cordic,
}

/// Check an RBE backend against the f64 reference.
#[derive(Parser, Debug)]
struct Args {
    /// Backend to check.
    #[arg(long, value_enum, default_value = "wgpu")]
    backend: BackendKind,
    /// Forward kernel (CubeCL backends; the others always use the closed form).
    #[arg(long, value_enum, default_value = "closed-form")]
    kernel: KernelArg,
    /// Number of random shapes.
    #[arg(long, default_value_t = 40)]
    cases: usize,
    /// RNG seed for shapes, seeds and inputs.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Largest relative error that passes (the unit tests use 1e-5).
    #[arg(long, default_value_t = 1e-5)]
    tolerance: f64,
}

/// The printed line, the backend and the four errors first, then the extras.
#[derive(serde::Serialize)]
struct Line {
    backend: &'static str,
    forward_max_rel_err: f64,
    grad_x_max_rel_err: f64,
    grad_seed_max_rel_err: f64,
    transitions_equal: bool,
    decode_max_rel_err: f64,
    kernel: RbeKernel,
    cases: usize,
    device: String,
    tolerance: f64,
    pass: bool,
}

/// Verifies the chosen backend on its default device.
struct Check<'a> {
    args: &'a Args,
    kernel: RbeKernel,
}

impl BackendJob for Check<'_> {
    type Output = VerifyReport;

    fn run<B: RbeBackend>(self, device: B::Device, _: BackendKind) -> VerifyReport {
        verify_backend::<B>(&device, self.kernel, self.args.cases, self.args.seed)
    }
}

fn run(args: &Args) -> Result<VerifyReport, String> {
    let kernel = match args.kernel {
        KernelArg::ClosedForm => RbeKernel::ClosedForm,
        KernelArg::Cordic => RbeKernel::Cordic,
    };
    dispatch(args.backend, Check { args, kernel }).map_err(|err| err.to_string())
}

fn main() {
    let args = Args::parse();
    // A backend without its driver (e.g. CUDA on a machine without libcuda) panics inside
    // CubeCL while creating the device: report that as an error, not a crash.
    let outcome = std::panic::catch_unwind(|| run(&args)).unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!(
            "the {} backend failed (is its device and driver present?): {reason}",
            args.backend.name()
        ))
    });
    match outcome {
        Ok(report) => {
            let pass = [
                report.forward_max_rel_err,
                report.grad_x_max_rel_err,
                report.grad_seed_max_rel_err,
                report.decode_max_rel_err,
            ]
            .iter()
            .all(|&err| err <= args.tolerance)
                && report.transitions_equal;
            let line = Line {
                backend: args.backend.name(),
                forward_max_rel_err: report.forward_max_rel_err,
                grad_x_max_rel_err: report.grad_x_max_rel_err,
                grad_seed_max_rel_err: report.grad_seed_max_rel_err,
                transitions_equal: report.transitions_equal,
                decode_max_rel_err: report.decode_max_rel_err,
                kernel: report.kernel,
                cases: report.cases,
                device: report.backend,
                tolerance: args.tolerance,
                pass,
            };
            println!("{}", serde_json::to_string(&line).expect("plain data"));
            if !pass {
                eprintln!(
                    "backend_check: {} exceeds the tolerance {:e} or miscounts transitions",
                    args.backend.name(),
                    args.tolerance
                );
                std::process::exit(1);
            }
        }
        Err(err) => {
            eprintln!("backend_check: {err}");
            std::process::exit(2);
        }
    }
}
