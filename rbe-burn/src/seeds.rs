//! [`RbeSeeds`]: the seeds of one layer as Burn parameters.

use burn::module::{
    AutodiffModule, Content, Devices, HasAutodiffModule, Module, ModuleDisplay,
    ModuleDisplayDefault, ModuleMapper, ModuleVisitor, Param, ParamId,
};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use rbe_cubecl::Packed128;

use crate::RbeError;

/// Container type reported to visitors and mappers; [`crate::apply_state_transitions`]
/// recognises RBE state by it.
pub(crate) const CONTAINER: &str = "Struct:RbeSeeds";
/// The name under which visitors see the transition probe.
pub(crate) const PROBE_FIELD: &str = "transitions";

/// The seeds of one RBE layer, one per block.
///
/// | field | tensor | role |
/// |---|---|---|
/// | `coords` | float `[n_blocks, 2]`, `(r, theta)` | trained by any Burn optimizer |
/// | `bits` | int `[n_blocks, 2]`, `hi` as two i32 bit patterns | moved by state transitions |
///
/// Both are saved bit for bit by every Burn recorder (`bits` fits i32 by construction).
///
/// Two behaviours differ from a plain pair of `Param`s:
/// - **The radius clamp.** Every [`Module::map`] (which is how Burn optimizers update
///   parameters) clamps `r` into the layer's radius range afterwards, as the paper's update
///   rule does. Any optimizer therefore keeps `r` in range without an adaptor.
/// - **The transition probe.** On an autodiff backend the module owns an `[n_blocks, 4]` leaf
///   that is passed to the op and receives the transition counts as its gradient. It is never
///   saved. Visitors see it, as a float parameter with the id of `bits`, only while it tracks
///   gradients, so [`burn::optim::GradientsParams::from_grads`] collects the counts under the
///   id of the bits they move.
#[derive(Debug, Clone)]
pub struct RbeSeeds<B: Backend> {
    coords: Param<Tensor<B, 2>>,
    bits: Param<Tensor<B, 2, Int>>,
    probe: Tensor<B, 2>,
    radius_range: (f32, f32),
}

/// The saved part of [`RbeSeeds`].
#[derive(burn::record::Record)]
pub struct RbeSeedsRecord<B: Backend> {
    /// `(r, theta)` per seed.
    pub coords: Param<Tensor<B, 2>>,
    /// `hi` per seed as two i32 bit patterns.
    pub bits: Param<Tensor<B, 2, Int>>,
}

/// `hi` as the two i32 bit patterns stored on the device.
pub(crate) fn hi_to_halves(hi: u64) -> [i32; 2] {
    [(hi >> 32) as u32 as i32, hi as u32 as i32]
}

/// Inverse of [`hi_to_halves`]; accepts the values widened to i64 by 64-bit int backends.
pub(crate) fn halves_to_hi(high: i64, low: i64) -> u64 {
    (u64::from(high as u32) << 32) | u64::from(low as u32)
}

fn probe_for<B: Backend>(n: usize, device: &B::Device, require_grad: bool) -> Tensor<B, 2> {
    let probe = Tensor::zeros([n, 4], device);
    if require_grad {
        probe.require_grad()
    } else {
        probe
    }
}

impl<B: Backend> RbeSeeds<B> {
    /// Uploads seeds. `radius_range` is the clamp applied after every update.
    pub fn from_packed(
        seeds: &[Packed128],
        radius_range: (f32, f32),
        device: &B::Device,
    ) -> Result<Self, RbeError> {
        let n = seeds.len();
        let mut coords = Vec::with_capacity(2 * n);
        let mut bits = Vec::with_capacity(2 * n);
        for seed in seeds {
            seed.validate()?;
            coords.extend([seed.r(), seed.theta()]);
            bits.extend(hi_to_halves(seed.hi));
        }
        let coords = Tensor::<B, 2>::from_data(TensorData::new(coords, [n, 2]), device);
        let bits = Tensor::<B, 2, Int>::from_data(TensorData::new(bits, [n, 2]), device);
        Ok(Self {
            coords: Param::initialized(ParamId::new(), coords.require_grad()),
            bits: Param::initialized(ParamId::new(), bits),
            probe: probe_for(n, device, true),
            radius_range,
        })
    }

    /// Downloads the seeds. Fails if training drove `r` or `theta` to NaN or infinity.
    pub fn to_packed(&self) -> Result<Vec<Packed128>, RbeError> {
        let coords = self.coords.val().into_data().convert::<f32>();
        let coords = coords.as_slice::<f32>().map_err(RbeError::data)?;
        let bits = self.bits.val().into_data().convert::<i64>();
        let bits = bits.as_slice::<i64>().map_err(RbeError::data)?;
        coords
            .chunks_exact(2)
            .zip(bits.chunks_exact(2))
            .map(|(c, b)| {
                let mut seed = Packed128 {
                    hi: halves_to_hi(b[0], b[1]),
                    lo: 0,
                };
                seed.set_r(c[0])?;
                seed.set_theta(c[1])?;
                Ok(seed)
            })
            .collect()
    }

    /// Number of seeds.
    pub fn len(&self) -> usize {
        self.coords.shape().dims::<2>()[0]
    }

    /// Whether there are no seeds (never the case for a valid layer).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(r, theta)` per seed, `[n_blocks, 2]`.
    pub fn coords(&self) -> Tensor<B, 2> {
        self.coords.val()
    }

    /// `hi` per seed as two i32 bit patterns, `[n_blocks, 2]`.
    pub fn bits(&self) -> Tensor<B, 2, Int> {
        self.bits.val()
    }

    /// The parameter id of `coords`.
    pub fn coords_id(&self) -> ParamId {
        self.coords.id
    }

    /// The parameter id of `bits`; transition counts are keyed by it in
    /// [`burn::optim::GradientsParams`].
    pub fn bits_id(&self) -> ParamId {
        self.bits.id
    }

    /// The `[min, max]` clamp on `r`.
    pub fn radius_range(&self) -> (f32, f32) {
        self.radius_range
    }

    pub(crate) fn probe(&self) -> Tensor<B, 2> {
        self.probe.clone()
    }

    /// The coords with `r` clamped, as a fresh leaf with the same gradient requirement.
    fn clamp_radius(&self, coords: Tensor<B, 2>) -> Tensor<B, 2> {
        let require_grad = coords.is_require_grad();
        let n = coords.dims()[0];
        let coords = coords.detach().set_require_grad(false);
        let r = coords
            .clone()
            .slice([0..n, 0..1])
            .clamp(self.radius_range.0, self.radius_range.1);
        let clamped = coords.slice_assign([0..n, 0..1], r);
        if require_grad {
            clamped.require_grad()
        } else {
            clamped
        }
    }
}

impl<B: Backend> Module<B> for RbeSeeds<B> {
    type Record = RbeSeedsRecord<B>;

    fn collect_devices(&self, devices: Devices<B>) -> Devices<B> {
        let devices = self.coords.collect_devices(devices);
        self.bits.collect_devices(devices)
    }

    fn fork(self, device: &B::Device) -> Self {
        let probe = probe_for(self.len(), device, self.probe.is_require_grad());
        Self {
            coords: self.coords.fork(device),
            bits: self.bits.fork(device),
            probe,
            radius_range: self.radius_range,
        }
    }

    fn to_device(self, device: &B::Device) -> Self {
        let probe = probe_for(self.len(), device, self.probe.is_require_grad());
        Self {
            coords: self.coords.to_device(device),
            bits: self.bits.to_device(device),
            probe,
            radius_range: self.radius_range,
        }
    }

    fn visit<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        visitor.enter_module("coords", CONTAINER);
        visitor.visit_float(&self.coords);
        visitor.exit_module("coords", CONTAINER);
        visitor.enter_module("bits", CONTAINER);
        visitor.visit_int(&self.bits);
        visitor.exit_module("bits", CONTAINER);
        if self.probe.is_require_grad() {
            visitor.enter_module(PROBE_FIELD, CONTAINER);
            visitor.visit_float(&Param::initialized(self.bits.id, self.probe.clone()));
            visitor.exit_module(PROBE_FIELD, CONTAINER);
        }
    }

    fn map<M: ModuleMapper<B>>(self, mapper: &mut M) -> Self {
        mapper.enter_module("coords", CONTAINER);
        let coords = mapper.map_float(self.coords.clone());
        mapper.exit_module("coords", CONTAINER);
        let coords = {
            let (id, tensor, param_mapper) = coords.consume();
            Param::from_mapped_value(id, self.clamp_radius(tensor), param_mapper)
        };
        mapper.enter_module("bits", CONTAINER);
        let bits = mapper.map_int(self.bits);
        mapper.exit_module("bits", CONTAINER);
        Self {
            coords,
            bits,
            probe: self.probe,
            radius_range: self.radius_range,
        }
    }

    fn load_record(self, record: Self::Record) -> Self {
        Self {
            coords: self.coords.load_record(record.coords),
            bits: self.bits.load_record(record.bits),
            ..self
        }
    }

    fn into_record(self) -> Self::Record {
        RbeSeedsRecord {
            coords: self.coords.into_record(),
            bits: self.bits.into_record(),
        }
    }

    fn num_params(&self) -> usize {
        Module::num_params(&self.coords)
    }
}

impl<B: AutodiffBackend> AutodiffModule<B> for RbeSeeds<B> {
    type InnerModule = RbeSeeds<B::InnerBackend>;

    fn valid(&self) -> Self::InnerModule {
        let coords = self.coords.valid();
        let probe = probe_for(self.len(), &coords.device(), false);
        RbeSeeds {
            coords,
            bits: self.bits.valid(),
            probe,
            radius_range: self.radius_range,
        }
    }

    fn from_inner(module: Self::InnerModule) -> Self {
        let coords: Param<Tensor<B, 2>> = Param::from_inner(module.coords);
        let probe = probe_for(module.probe.dims()[0], &coords.device(), true);
        RbeSeeds {
            coords,
            bits: Param::from_inner(module.bits),
            probe,
            radius_range: module.radius_range,
        }
    }
}

impl<B: AutodiffBackend> HasAutodiffModule<B> for RbeSeeds<B::InnerBackend> {
    type TrainModule = RbeSeeds<B>;
}

impl<B: Backend> ModuleDisplayDefault for RbeSeeds<B> {
    fn content(&self, content: Content) -> Option<Content> {
        content
            .set_top_level_type("RbeSeeds")
            .add("n_blocks", &self.len())
            .add("radius_range", &format!("{:?}", self.radius_range))
            .optional()
    }
}

impl<B: Backend> ModuleDisplay for RbeSeeds<B> {}
