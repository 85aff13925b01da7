//! [`HostGrads`]: one step's gradients on the host, where the replicas' gradients are
//! summed, and from where each replica uploads the sum on its own thread.
//!
//! The gradients cross threads as host values rather than as tensors: the replicas then
//! share no tensor, so no backend sees one thread consume a tensor another is using (Burn
//! 0.21's fusion streams lose track of such tensors), and no tensor has to move between two
//! devices' clients (CubeCL's WGPU runtime cannot).
//!
//! They are matched by position, the float parameters' order of visit, not by
//! [`burn::module::ParamId`]: replicas built alike visit alike, but a parameter rebuilt on
//! a record load gets a fresh id on each replica (an RBE layer's straight-through latent
//! weights do).
//!
//! Everything a step produces for the optimizer is a float gradient, the RBE transition
//! counts included (an RBE layer shows its transition probe to visitors as a float
//! parameter with the id of its bits), so these visitors carry the counts along with the
//! ordinary gradients and sum them too. A sum, not a mean: counts of a batch N times larger
//! are what the bit rules expect, and it is what Burn's own multi-device training does.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, Tensor, TensorData};

/// Gradients as host values, one entry per float parameter in visiting order (`None`
/// where a parameter has no gradient).
#[derive(Debug, Default)]
pub(crate) struct HostGrads {
    grads: Vec<Option<TensorData>>,
}

impl HostGrads {
    /// Reads `grads` (those of `module`'s parameters) back to the host.
    pub fn download<B, M>(module: &M, mut grads: GradientsParams) -> Self
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
    {
        let mut download = Download::<B> {
            source: &mut grads,
            target: Vec::new(),
            backend: std::marker::PhantomData,
        };
        module.visit(&mut download);
        Self {
            grads: download.target,
        }
    }

    /// The element-wise sum of `replicas` (in replica order), as `((g0 + g1) + g2) + ...`
    /// in each gradient's precision (f64 for f64 gradients, f32 for the others), so that
    /// every replica receives the same bits and an f32 sum is the one a device computes.
    /// A gradient missing from some replicas is the sum of those that have it.
    ///
    /// # Panics
    /// If two replicas' gradients at one position differ in shape (they ran different
    /// models).
    pub fn sum(replicas: Vec<HostGrads>) -> Self {
        let mut total: Vec<Option<TensorData>> = Vec::new();
        for replica in replicas {
            if total.len() < replica.grads.len() {
                total.resize(replica.grads.len(), None);
            }
            for (slot, grad) in total.iter_mut().zip(replica.grads) {
                *slot = match (slot.take(), grad) {
                    (Some(sum), Some(grad)) => Some(add(sum, grad)),
                    (sum, grad) => sum.or(grad),
                };
            }
        }
        Self { grads: total }
    }

    /// The gradients as tensors on `device`, for `module`'s optimizer.
    pub fn upload<B, M>(&self, module: &M, device: &B::Device) -> GradientsParams
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
    {
        let mut upload = Upload::<B> {
            source: self.grads.iter(),
            target: GradientsParams::new(),
            device,
        };
        module.visit(&mut upload);
        upload.target
    }
}

/// `a + b` element-wise, in `a`'s dtype.
fn add(a: TensorData, b: TensorData) -> TensorData {
    assert_eq!(
        a.shape, b.shape,
        "gradients of one parameter differ in shape"
    );
    let (dtype, shape) = (a.dtype, a.shape.clone());
    if dtype == DType::F64 {
        let sum: Vec<f64> = a
            .iter::<f64>()
            .zip(b.iter::<f64>())
            .map(|(x, y)| x + y)
            .collect();
        TensorData::new(sum, shape)
    } else {
        let sum: Vec<f32> = a
            .iter::<f32>()
            .zip(b.iter::<f32>())
            .map(|(x, y)| x + y)
            .collect();
        TensorData::new(sum, shape).convert_dtype(dtype)
    }
}

struct Download<'a, B> {
    source: &'a mut GradientsParams,
    target: Vec<Option<TensorData>>,
    backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Download<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = self.source.remove::<B::InnerBackend, D>(param.id);
        self.target.push(grad.map(Tensor::into_data));
    }
}

struct Upload<'a, B: AutodiffBackend> {
    source: std::slice::Iter<'a, Option<TensorData>>,
    target: GradientsParams,
    device: &'a B::Device,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Upload<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(Some(grad)) = self.source.next() {
            let dtype = grad.dtype;
            let tensor =
                Tensor::<B::InnerBackend, D>::from_data(grad.clone(), (self.device, dtype));
            self.target.register::<B::InnerBackend, D>(param.id, tensor);
        }
    }
}
