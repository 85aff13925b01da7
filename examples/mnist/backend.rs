//! Choosing the backend at run time.

use rbe::{RbeAutodiffBackend, RbeBackend};

/// The backends the example can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Flex on the CPU (`burn::backend::Flex`, Burn 0.21's recommended CPU backend).
    Flex,
    /// WGPU (`burn::backend::Wgpu`, fusion on: Vulkan, Metal, DX12 or GL; lavapipe on a
    /// CPU-only machine).
    Wgpu,
    /// NdArray on the CPU (legacy: Burn 0.21 recommends Flex).
    Ndarray,
    /// CUDA (`burn::backend::Cuda`, fusion on); needs the `cuda` feature at build time.
    Cuda,
}

impl BackendKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
            Self::Ndarray => "ndarray",
            Self::Cuda => "cuda",
        }
    }
}

/// Work that runs on whichever backend is chosen.
pub trait BackendJob {
    /// What the work returns.
    type Output;

    /// Runs on the autodiff backend `B`, whose inner backend evaluates.
    fn run<B>(self, device: B::Device, backend: &'static str) -> Self::Output
    where
        B: RbeAutodiffBackend,
        B::InnerBackend: RbeBackend;
}

/// `kind` was not compiled into this binary.
#[derive(Debug)]
pub struct Unavailable {
    /// The backend asked for.
    pub kind: BackendKind,
    /// The cargo feature that enables it.
    pub feature: &'static str,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "backend `{}` is not compiled in; rebuild with `--features {}`",
            self.kind.name(),
            self.feature
        )
    }
}

impl std::error::Error for Unavailable {}

#[cfg(feature = "flex")]
type FlexTrain = burn::backend::Autodiff<burn::backend::Flex<f32, i32>>;
#[cfg(feature = "wgpu")]
type WgpuTrain = burn::backend::Autodiff<burn::backend::Wgpu<f32, i32>>;
#[cfg(feature = "ndarray")]
type NdArrayTrain = burn::backend::Autodiff<burn::backend::NdArray<f32>>;
#[cfg(feature = "cuda")]
type CudaTrain = burn::backend::Autodiff<burn::backend::Cuda<f32, i32>>;

/// Runs `job` on the backend `kind`.
pub fn dispatch<J: BackendJob>(kind: BackendKind, job: J) -> Result<J::Output, Unavailable> {
    let name = kind.name();
    match kind {
        #[cfg(feature = "flex")]
        BackendKind::Flex => Ok(job.run::<FlexTrain>(Default::default(), name)),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => Ok(job.run::<WgpuTrain>(Default::default(), name)),
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => Ok(job.run::<NdArrayTrain>(Default::default(), name)),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok(job.run::<CudaTrain>(Default::default(), name)),
        // Reached only for backends whose feature is off.
        #[allow(unreachable_patterns)]
        _ => Err(Unavailable {
            kind,
            feature: name,
        }),
    }
}
