//! Tests of the op, the autodiff step and the module against the f64 reference, on every
//! backend compiled in. WGPU runs on whatever adapter is present (lavapipe in CI).

mod autodiff;
mod encode;
mod module;
mod op;
mod record;
mod step;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rbe_cubecl::reference::SeedParams;
use rbe_cubecl::{BlockLayout, Packed128};

use crate::RbeSeeds;

#[cfg(feature = "ndarray")]
pub type NdArray = burn::backend::NdArray<f32>;
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu<f32, i32>;

#[cfg(feature = "wgpu")]
pub use crate::testing::wgpu_device;

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn params(seeds: &[Packed128]) -> Vec<SeedParams> {
    seeds.iter().map(SeedParams::from).collect()
}

pub fn random_vec(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
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
    let s = RbeSeeds::<B>::from_packed(seeds, (0.1, 2.0), device).unwrap();
    (s.coords(), s.bits())
}

pub use crate::verify::{random_seeds, rel_err as max_rel_err};

pub fn cases(rng: &mut StdRng, count: usize) -> Vec<(BlockLayout, usize)> {
    crate::verify::verification_cases(rng, count)
}
