//! Tests of the op, the autodiff step and the module against the f64 reference, on every
//! backend compiled in. WGPU runs on whatever adapter is present (lavapipe in CI).
//!
//! Each backend test is one generic check instantiated by [`backend_tests!`] as a module of
//! `#[test]`s named after the backends, e.g. `op::closed_form_op_matches_reference::flex`;
//! filter with `cargo test -p rbe-burn wgpu_fusion`.

/// One `#[test]` per backend for a generic check.
///
/// `backend_tests!(name, [backends], |B, device| body)` defines `mod name` with one test
/// per listed backend, named after it; `body` sees the backend as the type `B` and a
/// `device: &B::Device`. Without the list it covers all five:
///
/// | test | backend `B` | feature |
/// |---|---|---|
/// | `ndarray` | `NdArray<f32>` | `ndarray` |
/// | `flex` | `Flex` | `flex` |
/// | `wgpu_cube` | `CubeBackend<WgpuRuntime, f32, i32, u32>` (no fusion) | `wgpu` |
/// | `wgpu_fusion` | `Wgpu<f32, i32>` = `Fusion<CubeBackend<..>>` | `wgpu` |
/// | `cuda` | `Cuda<f32, i32>` = `Fusion<CubeBackend<CudaRuntime, ..>>` | `cuda` |
///
/// The WGPU tests skip without an adapter unless `RBE_REQUIRE_WGPU=1`. The CUDA tests need
/// a GPU: CI only compiles them (`--features cuda`); `scripts/gpu.sh` runs them, prebuilt,
/// on a machine with one.
macro_rules! backend_tests {
    ($name:ident, |$b:ident, $device:ident| $body:expr) => {
        backend_tests!($name, [ndarray, flex, wgpu_cube, wgpu_fusion, cuda], |$b, $device| $body);
    };
    ($name:ident, [$($backend:ident),+ $(,)?], |$b:ident, $device:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(backend_tests!(@one $backend, |$b, $device| $body);)+
        }
    };
    (@one ndarray, |$b:ident, $device:ident| $body:expr) => {
        #[cfg(feature = "ndarray")]
        #[test]
        fn ndarray() {
            type $b = $crate::tests::NdArray;
            let $device = &Default::default();
            $body;
        }
    };
    (@one flex, |$b:ident, $device:ident| $body:expr) => {
        #[cfg(feature = "flex")]
        #[test]
        fn flex() {
            type $b = $crate::tests::Flex;
            let $device = &Default::default();
            $body;
        }
    };
    (@one wgpu_cube, |$b:ident, $device:ident| $body:expr) => {
        #[cfg(feature = "wgpu")]
        #[test]
        fn wgpu_cube() {
            type $b = $crate::tests::WgpuCube;
            if let Some(device) = $crate::testing::wgpu_device() {
                let $device = &device;
                $body;
            }
        }
    };
    (@one cuda, |$b:ident, $device:ident| $body:expr) => {
        #[cfg(feature = "cuda")]
        #[test]
        fn cuda() {
            type $b = burn::backend::Cuda<f32, i32>;
            let $device = &Default::default();
            $body;
        }
    };
    (@one wgpu_fusion, |$b:ident, $device:ident| $body:expr) => {
        #[cfg(feature = "wgpu")]
        #[test]
        fn wgpu_fusion() {
            type $b = $crate::tests::WgpuFusion;
            if let Some(device) = $crate::testing::wgpu_device() {
                let $device = &device;
                $body;
            }
        }
    };
}
pub(crate) use backend_tests;

mod autodiff;
mod encode;
#[cfg(feature = "flex")]
mod fallback;
// Both run on Flex only: what they test does not depend on the backend.
#[cfg(feature = "flex")]
mod fuzz;
mod latent_bits;
#[cfg(feature = "flex")]
mod limits;
mod module;
mod nonfinite;
mod op;
mod record;
mod sign;
mod step;
mod ternary;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rbe_kernels::formats::paper::reference::SeedParams;
use rbe_kernels::{BlockLayout, Packed128};

/// NdArray, Burn's legacy CPU backend: the tensor-op default bodies.
#[cfg(feature = "ndarray")]
pub type NdArray = burn::backend::NdArray<f32>;
/// Flex, Burn 0.21's recommended CPU backend: the tensor-op default bodies.
#[cfg(feature = "flex")]
pub type Flex = burn::backend::Flex;
/// WGPU without fusion: the fused CubeCL kernels launched directly.
#[cfg(feature = "wgpu")]
pub type WgpuCube =
    burn::backend::wgpu::CubeBackend<burn::backend::wgpu::WgpuRuntime, f32, i32, u32>;
/// WGPU as Burn's default features build it (the dev-dependency turns `fusion` on): the
/// kernels recorded as custom operations on the fusion stream.
#[cfg(feature = "wgpu")]
pub type WgpuFusion = burn::backend::Wgpu<f32, i32>;

// `wgpu_fusion` really is the fusion backend: this does not compile otherwise.
#[cfg(feature = "wgpu")]
const _: fn(WgpuFusion) -> burn_fusion::Fusion<WgpuCube> = |b| b;

pub use rbe_kernels::testing::{random_vec, rng};

pub fn params(seeds: &[Packed128]) -> Vec<SeedParams> {
    seeds.iter().map(SeedParams::from).collect()
}

pub fn tensor<B: Backend, const D: usize>(
    values: &[f64],
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

pub fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

pub fn seed_tensors<B: Backend>(
    seeds: &[Packed128],
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 2, Int>) {
    let (coords, bits) = crate::RbeSeedsRecord::<B>::upload(seeds, crate::FormatId::Paper, device);
    (coords.require_grad(), bits)
}

pub use crate::testing::{random_seeds, rel_err as max_rel_err};

/// The op's view of a paper-format layer of `layout`: kernel `kernel`, transitions at
/// `threshold` (`None`: off, and no signal asked for).
pub fn paper_spec(
    layout: BlockLayout,
    kernel: crate::RbeKernel,
    threshold: Option<f64>,
) -> crate::RbeSpec {
    crate::RbeSpec {
        layout,
        format: crate::SeedFormat::Paper(
            crate::PaperFormat::new()
                .with_kernel(kernel)
                .with_transitions(threshold),
        ),
        signal: threshold.is_some(),
        cache: crate::DecodeCache::default(),
    }
}

pub fn cases(rng: &mut StdRng, count: usize) -> Vec<(BlockLayout, usize)> {
    crate::testing::verification_cases(rng, count)
}
