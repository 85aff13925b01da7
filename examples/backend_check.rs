//! Runs the RBE op (forward, backward, decode, transition counts) of one backend on random
//! shapes against the f64 reference and prints one JSON line.
//!
//! ```sh
//! cargo run --example backend_check -- --backend ndarray
//! cargo run --example backend_check -- --backend wgpu --kernel cordic
//! cargo run --release --features cuda --example backend_check -- --backend cuda
//! ```

use clap::{Parser, ValueEnum};
use rbe::{RbeBackend, RbeKernel, VerifyReport, verify_backend};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BackendArg {
    Ndarray,
    Wgpu,
    Cuda,
}

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
    backend: BackendArg,
    /// Forward kernel (CubeCL backends; the others always use the closed form).
    #[arg(long, value_enum, default_value = "closed-form")]
    kernel: KernelArg,
    /// Number of random shapes.
    #[arg(long, default_value_t = 40)]
    cases: usize,
    /// RNG seed for shapes, seeds and inputs.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// The printed line, fields in the order the issue lists them, then the extras.
#[derive(serde::Serialize)]
struct Line {
    backend: String,
    forward_max_rel_err: f64,
    grad_x_max_rel_err: f64,
    grad_seed_max_rel_err: f64,
    transitions_equal: bool,
    decode_max_rel_err: f64,
    kernel: RbeKernel,
    cases: usize,
    device: String,
}

/// Verifies `B` on its default device.
fn check<B: RbeBackend>(args: &Args, kernel: RbeKernel) -> VerifyReport {
    verify_backend::<B>(&Default::default(), kernel, args.cases, args.seed)
}

fn run(args: &Args) -> Result<VerifyReport, String> {
    let kernel = match args.kernel {
        KernelArg::ClosedForm => RbeKernel::ClosedForm,
        KernelArg::Cordic => RbeKernel::Cordic,
    };
    match args.backend {
        #[cfg(feature = "ndarray")]
        BackendArg::Ndarray => Ok(check::<burn::backend::NdArray<f32>>(args, kernel)),
        #[cfg(feature = "wgpu")]
        BackendArg::Wgpu => Ok(check::<burn::backend::Wgpu<f32, i32>>(args, kernel)),
        #[cfg(feature = "cuda")]
        BackendArg::Cuda => Ok(check::<burn::backend::Cuda<f32, i32>>(args, kernel)),
        #[allow(unreachable_patterns)]
        other => Err(format!(
            "backend {other:?} is not compiled in; rebuild with `--features {}`",
            format!("{other:?}").to_lowercase()
        )),
    }
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
            "the {:?} backend failed (is its device and driver present?): {reason}",
            args.backend
        ))
    });
    match outcome {
        Ok(report) => {
            let line = Line {
                backend: format!("{:?}", args.backend).to_lowercase(),
                forward_max_rel_err: report.forward_max_rel_err,
                grad_x_max_rel_err: report.grad_x_max_rel_err,
                grad_seed_max_rel_err: report.grad_seed_max_rel_err,
                transitions_equal: report.transitions_equal,
                decode_max_rel_err: report.decode_max_rel_err,
                kernel: report.kernel,
                cases: report.cases,
                device: report.backend,
            };
            println!("{}", serde_json::to_string(&line).expect("plain data"));
        }
        Err(err) => {
            eprintln!("backend_check: {err}");
            std::process::exit(2);
        }
    }
}
