//! Finding NaN and infinity in a module's float parameters with a single device readback.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

use super::probe::ParamPath;
use crate::RbeError;

/// Collects one "all finite" flag per float parameter, so the flags of a whole model are
/// read back together instead of one synchronisation per parameter.
struct FiniteFlags<B: Backend> {
    path: ParamPath,
    paths: Vec<String>,
    flags: Vec<Tensor<B, 1, Bool>>,
}

impl<B: Backend> ModuleVisitor<B> for FiniteFlags<B> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.path.is_probe(param.id) {
            return;
        }
        self.paths.push(self.path.dotted());
        self.flags.push(param.val().is_finite().all());
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
        self.path.saw_int(param.id);
    }
}

/// The dotted path of the first float parameter of `module` that holds NaN or infinity.
pub(crate) fn first_non_finite<B: Backend, M: Module<B>>(module: &M) -> Option<String> {
    let mut visitor = FiniteFlags {
        path: ParamPath::default(),
        paths: Vec::new(),
        flags: Vec::new(),
    };
    module.visit(&mut visitor);
    if visitor.flags.is_empty() {
        return None;
    }
    let flags = Tensor::cat(visitor.flags, 0).into_data().convert::<bool>();
    let flags = flags.as_slice::<bool>().ok()?;
    let bad = flags.iter().position(|finite| !finite)?;
    visitor.paths.into_iter().nth(bad)
}

/// Checks that every float parameter of `module` is finite: the check [`crate::RbeOptimizer`]
/// runs after each step, for custom training loops that step an optimizer themselves.
///
/// # Errors
/// [`RbeError::NonFinite`] naming the first parameter that holds NaN or infinity.
pub fn check_finite<B: Backend, M: Module<B>>(module: &M) -> Result<(), RbeError> {
    match first_non_finite::<B, M>(module) {
        Some(path) => Err(RbeError::NonFinite(path)),
        None => Ok(()),
    }
}
