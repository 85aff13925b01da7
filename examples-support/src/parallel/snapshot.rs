//! [`Snapshot`]: a model's parameters as host values, from which each replica rebuilds its
//! own copy on its own thread.
//!
//! A replica forked from the main model shares its tensors (forking to the same device
//! moves nothing); on a fusion backend, two threads consuming the same tensor lose track of
//! it (Burn 0.21). Rebuilt from host values, each replica owns its tensors from the start.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

/// Every parameter's values by id (float, int and bool ones apart).
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    floats: HashMap<ParamId, TensorData>,
    ints: HashMap<ParamId, TensorData>,
    bools: HashMap<ParamId, TensorData>,
}

impl Snapshot {
    /// Reads `module`'s parameters back to the host.
    pub fn of<B: Backend, M: Module<B>>(module: &M) -> Self {
        let mut snapshot = Self::default();
        module.visit(&mut Reader {
            snapshot: &mut snapshot,
            last_int: None,
        });
        snapshot
    }

    /// `module` (with the same parameter ids) with each parameter replaced by a new tensor
    /// on `device` holding the snapshot's values, with the same gradient requirement.
    /// Parameters the snapshot lacks are kept.
    pub fn restore<B: Backend, M: Module<B>>(&self, module: M, device: &B::Device) -> M {
        module.map(&mut Writer {
            snapshot: self,
            device,
        })
    }
}

struct Reader<'a> {
    snapshot: &'a mut Snapshot,
    /// An RBE transition probe is the float parameter that follows its bits under their id;
    /// it never changes and is not mapped, so it is left out.
    last_int: Option<ParamId>,
}

impl<B: Backend> ModuleVisitor<B> for Reader<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.last_int != Some(param.id) {
            let data = param.val().into_data();
            self.snapshot.floats.insert(param.id, data);
        }
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
        self.last_int = Some(param.id);
        let data = param.val().into_data();
        self.snapshot.ints.insert(param.id, data);
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<B, D, Bool>>) {
        let data = param.val().into_data();
        self.snapshot.bools.insert(param.id, data);
    }
}

struct Writer<'a, B: Backend> {
    snapshot: &'a Snapshot,
    device: &'a B::Device,
}

impl<B: Backend> ModuleMapper<B> for Writer<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let Some(data) = self.snapshot.floats.get(&param.id) else {
            return param;
        };
        param.map(|tensor| {
            let fresh = Tensor::from_data(data.clone(), (self.device, data.dtype));
            if tensor.is_require_grad() {
                fresh.require_grad()
            } else {
                fresh
            }
        })
    }

    fn map_int<const D: usize>(
        &mut self,
        param: Param<Tensor<B, D, Int>>,
    ) -> Param<Tensor<B, D, Int>> {
        let Some(data) = self.snapshot.ints.get(&param.id) else {
            return param;
        };
        param.map(|_| Tensor::from_data(data.clone(), (self.device, data.dtype)))
    }

    fn map_bool<const D: usize>(
        &mut self,
        param: Param<Tensor<B, D, Bool>>,
    ) -> Param<Tensor<B, D, Bool>> {
        let Some(data) = self.snapshot.bools.get(&param.id) else {
            return param;
        };
        param.map(|_| Tensor::from_data(data.clone(), (self.device, data.dtype)))
    }
}
