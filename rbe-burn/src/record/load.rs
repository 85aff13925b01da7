//! [`load_checked`]: loading a record into a model with every way a file can be wrong (a
//! damaged file, another layer structure, non-finite seeds) turned into a typed error.

use std::panic::AssertUnwindSafe;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::record::FileRecorder;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

use super::mismatch::collect_mismatches;
use super::precheck::precheck;
use crate::RbeError;
use crate::training::{ParamPath, first_non_finite};

/// Every parameter of a module: its path, kind and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamShape {
    /// Dotted field path, e.g. `hidden.seeds.coords`.
    pub path: String,
    /// `float`, `int` or `bool`.
    pub kind: &'static str,
    /// The shape.
    pub shape: Vec<usize>,
}

#[derive(Default)]
struct ShapeCollector {
    path: ParamPath,
    shapes: Vec<ParamShape>,
    /// Also read every tensor back and check that its bytes fit its shape and dtype: a
    /// damaged file can declare one shape and carry data for another, which Burn accepts and
    /// only trips over (with a panic) when the tensor is used.
    check_data: bool,
    bad_data: Vec<String>,
}

impl ShapeCollector {
    fn check<B: Backend, const D: usize, K>(&mut self, tensor: Tensor<B, D, K>)
    where
        K: burn::tensor::BasicOps<B>,
    {
        if !self.check_data {
            return;
        }
        let data = tensor.into_data();
        if data.bytes.len() != data.num_elements() * data.dtype.size() {
            self.bad_data.push(self.path.dotted());
        }
    }

    fn push(&mut self, kind: &'static str, shape: Vec<usize>) {
        self.shapes.push(ParamShape {
            path: self.path.dotted(),
            kind,
            shape,
        });
    }
}

impl<B: Backend> ModuleVisitor<B> for ShapeCollector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        // RBE layers show visitors their gradient probe; it is never saved.
        if self.path.is_probe(param.id) {
            return;
        }
        self.push("float", param.shape().to_vec());
        self.check(param.val());
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
        self.path.saw_int(param.id);
        self.push("int", param.shape().to_vec());
        self.check(param.val());
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<B, D, Bool>>) {
        self.push("bool", param.shape().to_vec());
        self.check(param.val());
    }
}

/// The path, kind and shape of every saved parameter of `module`, in visiting order.
pub fn param_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<ParamShape> {
    let mut collector = ShapeCollector::default();
    module.visit::<ShapeCollector>(&mut collector);
    collector.shapes
}

/// Loads `path` into `model` and checks the result.
///
/// `model` should be freshly built from the same configuration as the saved one. Errors:
/// - [`RbeError::Recorder`]: missing, truncated, altered (with [`RbeRecorder`]) or
///   undecodable file;
/// - [`RbeError::RecordMismatch`]: a record saved from an RBE layer of another structure:
///   another block layout, or a residual or bias on one side only;
/// - [`RbeError::Shape`]: a parameter whose saved shape differs from the model's, e.g. a
///   different width or residual rank;
/// - [`RbeError::NonFinite`]: a float parameter holding NaN or infinity;
/// - [`RbeError::Config`]: a file Burn cannot decode or apply to the model at all, such as a
///   tensor whose data does not fit its shape or another variant of an enum module (Burn
///   panics there; the panic is caught and reported).
///
/// On error nothing is returned, so no half-loaded model can be used by mistake.
pub fn load_checked<B, M, R>(
    model: M,
    path: impl AsRef<Path>,
    recorder: &R,
    device: &B::Device,
) -> Result<M, RbeError>
where
    B: Backend,
    M: Module<B>,
    R: FileRecorder<B>,
{
    let expected = param_shapes::<B, M>(&model);
    let path = path.as_ref();
    // Burn panics on some damaged files (tensor data that does not fit its shape) and when a
    // record holds another variant of an enum module. Both are properties of the file, so
    // they become errors like the others.
    let (loaded, mismatches) = collect_mismatches(|| {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            precheck::<B, M, R>(path)?;
            let record = recorder.load(path.to_path_buf(), device)?;
            Ok::<M, RbeError>(model.load_record(record))
        }))
    });
    if let Some(err) = mismatches.into_iter().next() {
        return Err(err);
    }
    let loaded = loaded.map_err(|panic| {
        let reason = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_else(|| "the record does not fit the model".into());
        RbeError::Config(format!("{}: {reason}", path.display()))
    })??;
    let mut collector = ShapeCollector {
        check_data: true,
        ..Default::default()
    };
    let visited = std::panic::catch_unwind(AssertUnwindSafe(|| loaded.visit(&mut collector)));
    if visited.is_err() || !collector.bad_data.is_empty() {
        return Err(RbeError::Corrupted {
            path: path.display().to_string(),
            reason: format!(
                "tensor data does not fit its shape and type ({})",
                collector.bad_data.join(", ")
            ),
        });
    }
    if collector.shapes.len() != expected.len() {
        return Err(RbeError::Config(format!(
            "the record has {} parameters, the model {}",
            collector.shapes.len(),
            expected.len()
        )));
    }
    for (want, got) in expected.iter().zip(&collector.shapes) {
        if want != got {
            return Err(RbeError::shape(
                format!("{} ({})", want.path, want.kind),
                &want.shape,
                &got.shape,
            ));
        }
    }
    // Data of the right length can still carry another dtype than the backend's, on which
    // Burn panics when the tensor is first used.
    let non_finite =
        std::panic::catch_unwind(AssertUnwindSafe(|| first_non_finite::<B, M>(&loaded))).map_err(
            |_| RbeError::Corrupted {
                path: path.display().to_string(),
                reason: "tensor data does not fit its type".into(),
            },
        )?;
    if let Some(path) = non_finite {
        return Err(RbeError::NonFinite(path));
    }
    Ok(loaded)
}
