//! The backends a bench can run on, chosen at run time by `RBE_BENCH_BACKENDS`.
//!
//! - `flex` (the default): `burn::backend::Flex`, Burn 0.21's recommended CPU backend; its
//!   dense `Linear` is the CPU baseline.
//! - `wgpu`: `burn::backend::Wgpu`, which with Burn's default features is
//!   `Fusion<CubeBackend<WgpuRuntime, ..>>` (fusion and autotune on).
//! - `ndarray`: `burn::backend::NdArray`, legacy in Burn 0.21 (its dense `Linear` copies the
//!   weight on every call), kept so the older results can be reproduced.
//! - `cuda`: `burn::backend::Cuda` (fusion on), with `--features cuda`.
//!
//! A backend that was not compiled in (`flex`, `ndarray`, `wgpu`, `cuda` features) or cannot
//! start here (CUDA without a GPU) is skipped with a message, so the benches build and run
//! anywhere.

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::backend::Backend;
use rbe::RbeBackend;
use rbe_examples::backend::BackendKind;

use super::schema::BackendInfo;

/// Comma-separated backend names (`flex`, `wgpu`, `ndarray`, `cuda`); default
/// [`DEFAULT_BACKENDS`].
pub const BACKENDS_ENV: &str = "RBE_BENCH_BACKENDS";

/// The backends measured when `RBE_BENCH_BACKENDS` is unset: Flex, the CPU backend.
pub const DEFAULT_BACKENDS: &str = "flex";

/// What the benches need from a backend beyond running RBE layers.
pub trait BenchBackend: RbeBackend {
    /// Name used in ids and file names.
    const NAME: &'static str;

    /// Creates the device, or says why it cannot run here.
    fn start() -> Result<(Self::Device, BackendInfo), String>;

    /// Bytes held by live tensors on `device`.
    fn bytes_in_use(device: &Self::Device) -> u64;

    /// Runs `f` and returns an upper bound of the extra memory it used at its peak.
    fn peak_during<O>(device: &Self::Device, f: impl FnOnce() -> O) -> (O, u64);

    /// The largest buffer one kernel can bind, where the backend has such a limit.
    fn max_binding_bytes(_device: &Self::Device) -> Option<u64> {
        None
    }
}

/// Waits for every queued operation on `device`.
pub fn sync<B: Backend>(device: &B::Device) {
    B::sync(device).expect("device sync failed");
}

/// Code that runs once per selected backend.
pub trait PerBackend {
    fn run<B: BenchBackend>(&mut self, device: B::Device, info: BackendInfo);
}

/// Runs `job` on every backend named in `RBE_BENCH_BACKENDS`, in the given order.
///
/// # Panics
/// On a name that is not a backend at all, so a typo does not silently measure nothing.
pub fn for_each_selected(job: &mut impl PerBackend) {
    let names = std::env::var(BACKENDS_ENV).unwrap_or_else(|_| DEFAULT_BACKENDS.into());
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        // The examples' own backend names, so a bench and an example spell them alike.
        let kind = <BackendKind as clap::ValueEnum>::from_str(name, true)
            .unwrap_or_else(|e| panic!("{BACKENDS_ENV}: {e}"));
        match kind {
            BackendKind::Flex => flex_bench::run(job),
            BackendKind::Ndarray => ndarray_bench::run(job),
            BackendKind::Wgpu => wgpu_bench::run(job),
            BackendKind::Cuda => cuda_bench::run(job),
            BackendKind::WgpuCube => {
                panic!("{BACKENDS_ENV}: the benches time `wgpu` (fusion on), not `wgpu-cube`")
            }
        }
    }
}

fn start_then<B: BenchBackend>(job: &mut impl PerBackend) {
    // Device start-up panics inside Burn/CubeCL when there is no driver or adapter.
    match catch_unwind(AssertUnwindSafe(B::start)) {
        Ok(Ok((device, info))) => job.run::<B>(device, info),
        Ok(Err(why)) => eprintln!("skipping {}: {why}", B::NAME),
        Err(_) => eprintln!(
            "skipping {}: the device failed to start (see above)",
            B::NAME
        ),
    }
}

#[cfg(feature = "flex")]
mod flex_bench {
    use super::{BenchBackend, PerBackend, start_then};
    use crate::common::memory;
    use crate::common::schema::BackendInfo;

    /// Flex with f32 floats and i32 ints, Burn 0.21's recommended CPU backend.
    pub type FlexBench = burn::backend::Flex<f32, i32>;

    pub fn run(job: &mut impl PerBackend) {
        start_then::<FlexBench>(job);
    }

    impl BenchBackend for FlexBench {
        const NAME: &'static str = "flex";

        fn start() -> Result<(Self::Device, BackendInfo), String> {
            Ok((
                Default::default(),
                BackendInfo {
                    name: Self::NAME.into(),
                    device: "host CPU (burn-flex with Burn's default features: SIMD, rayon)".into(),
                    memory_probe: memory::HEAP_PROBE.into(),
                },
            ))
        }

        fn bytes_in_use(_device: &Self::Device) -> u64 {
            memory::heap_in_use()
        }

        fn peak_during<O>(_device: &Self::Device, f: impl FnOnce() -> O) -> (O, u64) {
            memory::heap_peak(f)
        }
    }
}

#[cfg(not(feature = "flex"))]
mod flex_bench {
    pub fn run(_job: &mut impl super::PerBackend) {
        eprintln!("skipping flex: built without the `flex` feature");
    }
}

#[cfg(feature = "ndarray")]
mod ndarray_bench {
    use super::{BenchBackend, PerBackend, start_then};
    use crate::common::memory;
    use crate::common::schema::BackendInfo;

    /// NdArray with f32 floats (legacy CPU backend in Burn 0.21).
    pub type NdArrayBench = burn::backend::NdArray<f32>;

    pub fn run(job: &mut impl PerBackend) {
        start_then::<NdArrayBench>(job);
    }

    impl BenchBackend for NdArrayBench {
        const NAME: &'static str = "ndarray";

        fn start() -> Result<(Self::Device, BackendInfo), String> {
            Ok((
                Default::default(),
                BackendInfo {
                    name: Self::NAME.into(),
                    device: "host CPU (burn-ndarray, legacy in Burn 0.21, as configured by \
                             this workspace)"
                        .into(),
                    memory_probe: memory::HEAP_PROBE.into(),
                },
            ))
        }

        fn bytes_in_use(_device: &Self::Device) -> u64 {
            memory::heap_in_use()
        }

        fn peak_during<O>(_device: &Self::Device, f: impl FnOnce() -> O) -> (O, u64) {
            memory::heap_peak(f)
        }
    }
}

#[cfg(not(feature = "ndarray"))]
mod ndarray_bench {
    pub fn run(_job: &mut impl super::PerBackend) {
        eprintln!("skipping ndarray: built without the `ndarray` feature");
    }
}

#[cfg(feature = "wgpu")]
mod wgpu_bench {
    use burn::backend::Wgpu;
    use burn::backend::wgpu::graphics::AutoGraphicsApi;
    use burn::backend::wgpu::{RuntimeOptions, WgpuDevice, WgpuRuntime, init_setup};

    use super::{BenchBackend, PerBackend, start_then, sync};
    use crate::common::memory;
    use crate::common::schema::BackendInfo;

    /// Burn's default WGPU backend: `Fusion<CubeBackend<WgpuRuntime, f32, i32, u32>>`.
    pub type WgpuBench = Wgpu<f32, i32>;

    pub fn run(job: &mut impl PerBackend) {
        start_then::<WgpuBench>(job);
    }

    impl BenchBackend for WgpuBench {
        const NAME: &'static str = "wgpu";

        fn start() -> Result<(Self::Device, BackendInfo), String> {
            let device = WgpuDevice::default();
            // The same set-up Burn would do lazily, done here so the adapter can be named.
            let setup = init_setup::<AutoGraphicsApi>(&device, RuntimeOptions::default());
            let adapter = setup.adapter.get_info();
            let kind = format!("{:?}", adapter.device_type);
            let mut name = format!(
                "{} ({:?}; {} {})",
                adapter.name, adapter.backend, adapter.driver, adapter.driver_info
            );
            if kind == "Cpu" && adapter.driver.contains("llvmpipe") {
                name.push_str(" - lavapipe software Vulkan, runs on the CPU");
            } else if kind == "Cpu" {
                name.push_str(" - software adapter, runs on the CPU");
            }
            Ok((
                device,
                BackendInfo {
                    name: Self::NAME.into(),
                    device: name,
                    memory_probe: memory::CUBE_PROBE.into(),
                },
            ))
        }

        fn bytes_in_use(device: &Self::Device) -> u64 {
            memory::cube_in_use::<WgpuRuntime>(device, || sync::<Self>(device))
        }

        fn peak_during<O>(device: &Self::Device, f: impl FnOnce() -> O) -> (O, u64) {
            memory::cube_peak::<WgpuRuntime, O>(device, || sync::<Self>(device), f)
        }

        fn max_binding_bytes(device: &Self::Device) -> Option<u64> {
            Some(memory::cube_max_binding::<WgpuRuntime>(device))
        }
    }
}

#[cfg(not(feature = "wgpu"))]
mod wgpu_bench {
    pub fn run(_job: &mut impl super::PerBackend) {
        eprintln!("skipping wgpu: built without the `wgpu` feature");
    }
}

#[cfg(feature = "cuda")]
mod cuda_bench {
    use std::process::Command;

    use burn::backend::Cuda;
    use burn::backend::cuda::CudaDevice;
    use burn_cubecl::cubecl::cuda::CudaRuntime;

    use super::{BenchBackend, PerBackend, start_then, sync};
    use crate::common::memory;
    use crate::common::schema::BackendInfo;

    pub type CudaBench = Cuda<f32, i32>;

    pub fn run(job: &mut impl PerBackend) {
        start_then::<CudaBench>(job);
    }

    /// CubeCL does not expose the device name; the driver's tool does, when present.
    fn gpu_name() -> String {
        Command::new("nvidia-smi")
            .args([
                "--query-gpu=name,driver_version,memory.total",
                "--format=csv,noheader",
                "--id=0",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "CUDA device 0 (nvidia-smi unavailable)".into())
    }

    impl BenchBackend for CudaBench {
        const NAME: &'static str = "cuda";

        fn start() -> Result<(Self::Device, BackendInfo), String> {
            let device = CudaDevice::default();
            // Forces client creation now, so a missing driver is reported as a skip.
            sync::<Self>(&device);
            Ok((
                device,
                BackendInfo {
                    name: Self::NAME.into(),
                    device: gpu_name(),
                    memory_probe: memory::CUBE_PROBE.into(),
                },
            ))
        }

        fn bytes_in_use(device: &Self::Device) -> u64 {
            memory::cube_in_use::<CudaRuntime>(device, || sync::<Self>(device))
        }

        fn peak_during<O>(device: &Self::Device, f: impl FnOnce() -> O) -> (O, u64) {
            memory::cube_peak::<CudaRuntime, O>(device, || sync::<Self>(device), f)
        }

        fn max_binding_bytes(device: &Self::Device) -> Option<u64> {
            Some(memory::cube_max_binding::<CudaRuntime>(device))
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod cuda_bench {
    pub fn run(_job: &mut impl super::PerBackend) {
        eprintln!("skipping cuda: build with `--features cuda`");
    }
}
