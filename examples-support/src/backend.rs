//! Choosing the backend at run time: the `--backend` value of every example, and
//! [`dispatch`], which runs a [`BackendJob`] generic over the backend on the one chosen.
//!
//! ```no_run
//! use rbe_burn::RbeBackend;
//! use rbe_examples::backend::{BackendJob, BackendKind, dispatch};
//!
//! struct Hello;
//!
//! impl BackendJob for Hello {
//!     type Output = String;
//!
//!     fn run<B: RbeBackend>(self, _device: B::Device, kind: BackendKind) -> String {
//!         format!("running on {}", kind.name())
//!     }
//! }
//!
//! println!("{}", dispatch(BackendKind::Flex, Hello).unwrap());
//! ```

use rbe_burn::RbeBackend;

/// A backend an example can run on, as `--backend` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Flex on the CPU (`burn::backend::Flex`, Burn 0.21's recommended CPU backend).
    Flex,
    /// WGPU (`burn::backend::Wgpu`, fusion on: Vulkan, Metal, DX12 or GL; lavapipe on a
    /// CPU-only machine).
    Wgpu,
    /// WGPU through `CubeBackend` directly, fusion off.
    WgpuCube,
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
            Self::WgpuCube => "wgpu-cube",
            Self::Ndarray => "ndarray",
            Self::Cuda => "cuda",
        }
    }

    /// The cargo feature that compiles the backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Wgpu | Self::WgpuCube => "wgpu",
            Self::Ndarray => "ndarray",
            Self::Cuda => "cuda",
        }
    }
}

/// Work that runs on whichever backend is chosen.
pub trait BackendJob {
    type Output;

    /// Runs on the backend `B` (the backend chosen, without autodiff: training wraps it in
    /// `burn::backend::Autodiff<B>`, which is then an `RbeAutodiffBackend`).
    fn run<B: RbeBackend>(self, device: B::Device, kind: BackendKind) -> Self::Output;
}

/// `kind` was not compiled into this binary.
#[derive(Debug)]
pub struct Unavailable {
    /// The backend asked for.
    pub kind: BackendKind,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "backend `{}` is not compiled in; rebuild with `--features {}`",
            self.kind.name(),
            self.kind.feature()
        )
    }
}

impl std::error::Error for Unavailable {}

/// `CubeBackend` on WGPU with Burn's default element types, fusion off.
#[cfg(feature = "wgpu")]
pub type WgpuCube = burn_cubecl::CubeBackend<burn::backend::wgpu::WgpuRuntime, f32, i32, u32>;

/// Runs `job` on the default device of the backend `kind`.
pub fn dispatch<J: BackendJob>(kind: BackendKind, job: J) -> Result<J::Output, Unavailable> {
    match kind {
        #[cfg(feature = "flex")]
        BackendKind::Flex => Ok(job.run::<burn::backend::Flex<f32, i32>>(Default::default(), kind)),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => Ok(job.run::<burn::backend::Wgpu<f32, i32>>(Default::default(), kind)),
        #[cfg(feature = "wgpu")]
        BackendKind::WgpuCube => Ok(job.run::<WgpuCube>(Default::default(), kind)),
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => {
            Ok(job.run::<burn::backend::NdArray<f32>>(Default::default(), kind))
        }
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok(job.run::<burn::backend::Cuda<f32, i32>>(Default::default(), kind)),
        // Reached only for backends whose feature is off.
        #[allow(unreachable_patterns)]
        _ => Err(Unavailable { kind }),
    }
}

/// `--devices N` asked for more devices than the backend offers, or for none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicesError {
    /// `--devices 0`.
    None,
    /// `--ddp` with a single device: there are no replicas to keep in step.
    DdpAlone,
    /// More devices than `kind` offers here.
    TooMany {
        /// The backend.
        kind: BackendKind,
        /// Devices asked for.
        asked: usize,
        /// Devices it offers: CUDA's GPUs, or elsewhere the host's hardware threads (each
        /// replica is one thread on the backend's one device).
        offered: usize,
    },
}

impl std::fmt::Display for DevicesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => write!(f, "--devices must be at least 1"),
            Self::DdpAlone => write!(f, "--ddp needs --devices 2 or more"),
            Self::TooMany {
                kind,
                asked,
                offered,
            } => {
                let what = if kind.replicas_share_one_device() {
                    "logical devices (its one device, once per hardware thread of this host)"
                } else {
                    "GPUs on this machine"
                };
                write!(
                    f,
                    "--devices {asked}: backend `{}` offers {offered} {what}",
                    kind.name()
                )
            }
        }
    }
}

impl std::error::Error for DevicesError {}

impl BackendKind {
    /// Whether several replicas train on the backend's one device listed several times
    /// (see [`devices`]), rather than on several devices of its own (CUDA).
    pub fn replicas_share_one_device(self) -> bool {
        self != Self::Cuda
    }
}

/// The `n` devices data-parallel training on backend `kind` uses, the first one `default`.
///
/// A CPU backend has one device: its `n` logical devices are that device listed `n` times,
/// which Burn's multi-device strategy accepts (each replica is a thread), up to the host's
/// hardware threads. WGPU does the same with its default device: in Burn 0.21 a tensor
/// cannot move between two WGPU devices (CubeCL's copy between servers is not implemented
/// there, and it panics), and training on several has to move the model. CUDA uses its
/// first `n` GPUs (`Backend::device_count`) and refuses more.
///
/// # Errors
/// [`DevicesError`] for `n == 0` or more devices than the backend offers.
pub fn devices<B: burn::tensor::backend::Backend>(
    kind: BackendKind,
    n: usize,
    default: &B::Device,
) -> Result<Vec<B::Device>, DevicesError> {
    use burn::tensor::backend::{Device, DeviceId, DeviceOps};
    match n {
        0 => return Err(DevicesError::None),
        1 => return Ok(vec![default.clone()]),
        _ => {}
    }
    let shared = kind.replicas_share_one_device();
    let type_id = default.id().type_id;
    let offered = if shared {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        B::device_count(type_id)
    };
    if n > offered {
        return Err(DevicesError::TooMany {
            kind,
            asked: n,
            offered,
        });
    }
    Ok(if shared {
        vec![default.clone(); n]
    } else {
        (0..n)
            .map(|i| B::Device::from_id(DeviceId::new(type_id, i as u16)))
            .collect()
    })
}
