//! Running kernels on the WGPU runtime in tests: the client, uploads and read-backs. The
//! random seeds, inputs, shapes and error measures are [`crate::testing`]'s.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;
use cubecl::wgpu::{WgpuDevice, WgpuRuntime};
use rand::rngs::StdRng;

use super::KernelDtypes;
use crate::BlockLayout;
use crate::testing::{Blocks, named_cases, random_case};

pub type R = WgpuRuntime;

pub struct TestEnv {
    pub client: ComputeClient<R>,
    pub dtypes: KernelDtypes,
}

impl TestEnv {
    /// The WGPU client, or `None` (test skipped) when no adapter exists and
    /// `RBE_REQUIRE_WGPU` is not `1`. CI sets it, so there a missing adapter fails.
    pub fn new() -> Option<Self> {
        let client = std::panic::catch_unwind(|| R::client(&WgpuDevice::default()));
        match client {
            Ok(client) => Some(Self {
                client,
                dtypes: KernelDtypes {
                    float: f32::as_type_native_unchecked().storage_type(),
                    int: i32::as_type_native_unchecked().storage_type(),
                },
            }),
            Err(_) if std::env::var("RBE_REQUIRE_WGPU").as_deref() == Ok("1") => {
                panic!("RBE_REQUIRE_WGPU=1 but no WGPU adapter was found")
            }
            Err(_) => {
                eprintln!("no WGPU adapter: skipping (set RBE_REQUIRE_WGPU=1 to fail instead)");
                None
            }
        }
    }

    /// An f32 tensor of `shape` holding `values` rounded to f32.
    pub fn floats(&self, values: &[f64], shape: &[usize]) -> TensorHandle<R> {
        let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        let handle = self.client.create_from_slice(f32::as_bytes(&data));
        TensorHandle::new_contiguous(shape.to_vec(), handle, self.dtypes.float)
    }

    /// `(coords [n, 2], bits [n, 2])` as the layers store them, from the `coords` and `bits`
    /// of [`crate::testing::PaperSeeds`] or [`crate::testing::SignSeeds`].
    pub fn seeds(&self, coords: &[f32], bits: &[i32]) -> (TensorHandle<R>, TensorHandle<R>) {
        self.seeds_of_width(coords, bits, 2)
    }

    /// As [`TestEnv::seeds`] for a format whose bits are `words` i32 per seed (the ternary
    /// seed's 4 words of [`crate::testing::TernarySeeds`]).
    pub fn seeds_of_width(
        &self,
        coords: &[f32],
        bits: &[i32],
        words: usize,
    ) -> (TensorHandle<R>, TensorHandle<R>) {
        let n = bits.len() / words;
        let coords: Vec<f64> = coords.iter().map(|&v| f64::from(v)).collect();
        let handle = self.client.create_from_slice(i32::as_bytes(bits));
        (
            self.floats(&coords, &[n, 2]),
            TensorHandle::new_contiguous(vec![n, words], handle, self.dtypes.int),
        )
    }

    /// An int tensor's values (i32 bit patterns).
    pub fn read_ints(&self, t: &TensorHandle<R>) -> Vec<i32> {
        let bytes = self.client.read_one(t.handle.clone()).expect("read back");
        let n = t.shape().iter().product::<usize>();
        i32::from_bytes(&bytes)[..n].to_vec()
    }

    /// A float tensor's values, widened to f64.
    pub fn read(&self, t: &TensorHandle<R>) -> Vec<f64> {
        let bytes = self.client.read_one(t.handle.clone()).expect("read back");
        let n = t.shape().iter().product::<usize>();
        f32::from_bytes(&bytes)[..n]
            .iter()
            .map(|&v| f64::from(v))
            .collect()
    }
}

/// The paper-format shapes the GPU tests run: the named cases up to 20 000 weights and 30
/// random ones with batches up to 20. The larger named cases exercise the CPU kernels'
/// threading; here they would only slow the f64 reference down, which the tests of every
/// GPU kernel run in debug builds.
pub fn paper_cases(rng: &mut StdRng) -> Vec<(BlockLayout, usize)> {
    let mut out: Vec<_> = named_cases(Blocks::Any)
        .into_iter()
        .filter(|(layout, _)| layout.rows * layout.cols <= 20_000)
        .collect();
    out.extend((0..30).map(|_| random_case(rng, Blocks::Any, 20)));
    out
}
