//! Finding NaN and infinity in a module's float parameters with a single device readback in
//! the common case.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

use super::probe::ParamPath;
use crate::RbeError;

/// Collects every float parameter, flattened, and its sum, so the sums of a whole model are
/// read back together instead of one synchronisation per parameter.
///
/// A finite sum proves every element finite (a NaN or an infinity makes the sum NaN or
/// infinite), and summing reads each value once where an element-wise test also writes a
/// flag per value: on a 4096² layer's latent weights the difference is a visible share of a
/// training step. Only a parameter whose sum is not finite (it holds a NaN or infinity, or
/// its finite values overflow the sum) gets the element-wise test.
struct FiniteFlags<B: Backend> {
    path: ParamPath,
    paths: Vec<String>,
    values: Vec<Tensor<B, 1>>,
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
        self.values.push(param.val().flatten(0, D - 1));
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
        values: Vec::new(),
    };
    module.visit(&mut visitor);
    if visitor.values.is_empty() {
        return None;
    }
    let sums: Vec<Tensor<B, 1>> = visitor.values.iter().map(|v| v.clone().sum()).collect();
    let sums = Tensor::cat(sums, 0).into_data().convert::<f64>();
    let suspects: Vec<usize> = sums
        .as_slice::<f64>()
        .ok()?
        .iter()
        .enumerate()
        .filter(|(_, sum)| !sum.is_finite())
        .map(|(i, _)| i)
        .collect();
    if suspects.is_empty() {
        return None;
    }
    let flags: Vec<Tensor<B, 1, Bool>> = suspects
        .iter()
        .map(|&i| visitor.values[i].clone().is_finite().all())
        .collect();
    let flags = Tensor::cat(flags, 0).into_data().convert::<bool>();
    let bad = flags
        .as_slice::<bool>()
        .ok()?
        .iter()
        .position(|finite| !finite)?;
    visitor.paths.into_iter().nth(suspects[bad])
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
