//! Running kernels on the WGPU runtime in tests, and comparing them with the reference.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;
use cubecl::wgpu::{WgpuDevice, WgpuRuntime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::KernelDtypes;
use crate::BlockLayout;
use crate::reference::SeedParams;

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

    pub fn floats(&self, values: &[f64], shape: &[usize]) -> TensorHandle<R> {
        let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        let handle = self.client.create_from_slice(f32::as_bytes(&data));
        TensorHandle::new_contiguous(shape.to_vec(), handle, self.dtypes.float)
    }

    /// `(coords [n, 2], bits [n, 2])` as the layers store them.
    pub fn seeds(&self, seeds: &[SeedParams]) -> (TensorHandle<R>, TensorHandle<R>) {
        let n = seeds.len();
        let coords: Vec<f64> = seeds.iter().flat_map(|s| [s.r, s.theta]).collect();
        // The high half holds unrelated fields; fill it so kernels must ignore it.
        let bits: Vec<i32> = seeds
            .iter()
            .flat_map(|s| {
                [
                    0x5A5A_0000_u32 as i32 ^ s.rotations as i32,
                    s.rotations as i32,
                ]
            })
            .collect();
        let handle = self.client.create_from_slice(i32::as_bytes(&bits));
        (
            self.floats(&coords, &[n, 2]),
            TensorHandle::new_contiguous(vec![n, 2], handle, self.dtypes.int),
        )
    }

    pub fn read(&self, t: &TensorHandle<R>) -> Vec<f64> {
        let bytes = self.client.read_one(t.handle.clone()).expect("read back");
        let n = t.shape().iter().product::<usize>();
        f32::from_bytes(&bytes)[..n]
            .iter()
            .map(|&v| f64::from(v))
            .collect()
    }
}

impl TestEnv {
    /// An i32 tensor's values.
    pub fn read_ints(&self, t: &TensorHandle<R>) -> Vec<i32> {
        let bytes = self.client.read_one(t.handle.clone()).expect("read back");
        let n = t.shape().iter().product::<usize>();
        i32::from_bytes(&bytes)[..n].to_vec()
    }
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Seeds whose `r` and `theta` are exactly representable in f32, so the kernel and the
/// reference see the same values.
pub fn random_seeds(rng: &mut StdRng, n: usize) -> Vec<SeedParams> {
    (0..n)
        .map(|_| SeedParams {
            r: f64::from(rng.random_range(0.1f32..2.0)),
            theta: f64::from(rng.random_range(-3.2f32..3.2)),
            rotations: rng.random(),
        })
        .collect()
}

/// Values in `[-1, 1)` that are exact in f32.
pub fn random_vec(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| f64::from(rng.random_range(-1.0f32..1.0)))
        .collect()
}

/// Normwise relative error `max|got - want| / max|want|`; meaningful where single outputs
/// cancel to near zero.
pub fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    let err = got
        .iter()
        .zip(want)
        .fold(0f64, |m, (g, w)| m.max((g - w).abs()))
        / scale;
    if std::env::var("RBE_PRINT_ERRORS").is_ok() {
        eprintln!("{what}: relative error {err:e}");
    }
    assert!(err <= tol, "{what}: relative error {err:e} > {tol:e}");
}

/// At least 30 shapes: full, cropped and single-row/column blocks, rectangular blocks, and
/// odd sizes, with a batch each.
pub fn cases(rng: &mut StdRng) -> Vec<(BlockLayout, usize)> {
    let mut out = vec![
        (BlockLayout::new(1, 37, 8, 8).unwrap(), 3),
        (BlockLayout::new(29, 1, 8, 8).unwrap(), 2),
        (BlockLayout::new(1, 1, 4, 4).unwrap(), 1),
        (BlockLayout::new(64, 64, 32, 32).unwrap(), 5),
        (BlockLayout::new(33, 17, 5, 3).unwrap(), 4),
        (BlockLayout::new(1, 100, 1, 7).unwrap(), 2),
        (BlockLayout::new(70, 45, 16, 16).unwrap(), 17),
    ];
    while out.len() < 32 {
        let br = rng.random_range(1..=16);
        let bc = if rng.random_bool(0.7) {
            br
        } else {
            rng.random_range(1..=16)
        };
        let layout =
            BlockLayout::new(rng.random_range(1..=70), rng.random_range(1..=70), br, bc).unwrap();
        out.push((layout, rng.random_range(1..=20)));
    }
    out
}
