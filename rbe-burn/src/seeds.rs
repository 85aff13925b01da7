//! [`RbeSeeds`]: the seeds of one layer as Burn parameters.

use burn::module::{
    AutodiffModule, Content, Devices, HasAutodiffModule, Module, ModuleDisplay,
    ModuleDisplayDefault, ModuleMapper, ModuleVisitor, Param, ParamId,
};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use rbe_cubecl::Packed128;

use crate::RbeError;
use crate::probe::TransitionProbe;
use crate::seeds_record::{RbeLayerHeader, RbeSeedsRecord, report_mismatch};

/// Container type reported to visitors and mappers.
const CONTAINER: &str = "Struct:RbeSeeds";

/// The seeds of one RBE layer, one per block.
///
/// | field | tensor | role |
/// |---|---|---|
/// | `coords` | float `[n_blocks, 2]`, `(r, theta)` | trained by any Burn optimizer |
/// | `bits` | int `[n_blocks, 2]`, `hi` as two i32 bit patterns | moved by state transitions |
///
/// Both are saved bit for bit by every Burn recorder, at any precision setting: the record
/// stores the seeds as [`Packed128`]s (see [`RbeSeedsRecord`]), together with the
/// [`RbeLayerHeader`] of the layer they belong to.
///
/// Two behaviours differ from a plain pair of `Param`s:
/// - **The radius clamp.** Every [`Module::map`] (which is how Burn optimizers update
///   parameters) clamps `r` into the layer's radius range afterwards, as the paper's update
///   rule does. Any optimizer therefore keeps `r` in range without an adaptor.
/// - **The transition probe.** On an autodiff backend the module owns an `[n_blocks, 4]` leaf
///   that is passed to the op and receives the transition counts as its gradient. It is never
///   saved. Visitors see it, as a float parameter with the id of `bits`, only while it tracks
///   gradients, so [`burn::optim::GradientsParams::from_grads`] collects the counts under the
///   id of the bits they move. The module `probe` of this crate describes the whole flow.
#[derive(Debug, Clone)]
pub struct RbeSeeds<B: Backend> {
    coords: Param<Tensor<B, 2>>,
    bits: Param<Tensor<B, 2, Int>>,
    probe: TransitionProbe<B>,
    radius_range: (f32, f32),
    header: Option<RbeLayerHeader>,
}

/// `hi` as the two i32 bit patterns stored on the device.
pub(crate) fn hi_to_halves(hi: u64) -> [i32; 2] {
    [(hi >> 32) as u32 as i32, hi as u32 as i32]
}

/// Inverse of [`hi_to_halves`]; accepts the values widened to i64 by 64-bit int backends.
pub(crate) fn halves_to_hi(high: i64, low: i64) -> u64 {
    (u64::from(high as u32) << 32) | u64::from(low as u32)
}

impl<B: Backend> RbeSeeds<B> {
    /// Uploads seeds. `radius_range` is the clamp applied after every update.
    pub fn from_packed(
        seeds: &[Packed128],
        radius_range: (f32, f32),
        device: &B::Device,
    ) -> Result<Self, RbeError> {
        for seed in seeds {
            seed.validate()?;
        }
        let (coords, bits) = RbeSeedsRecord::<B>::upload(seeds, device);
        Ok(Self {
            coords: Param::initialized(ParamId::new(), coords.require_grad()),
            bits: Param::initialized(ParamId::new(), bits),
            probe: TransitionProbe::new(seeds.len(), device, true),
            radius_range,
            header: None,
        })
    }

    /// The same seeds, marked as belonging to a layer of structure `header`; records keep
    /// it and refuse to load into a layer of another structure.
    pub(crate) fn with_header(self, header: RbeLayerHeader) -> Self {
        Self {
            header: Some(header),
            ..self
        }
    }

    /// The structure of the layer these seeds belong to, if any.
    pub fn header(&self) -> Option<RbeLayerHeader> {
        self.header
    }

    /// Downloads the seeds. Fails if training drove `r` or `theta` to NaN or infinity.
    pub fn to_packed(&self) -> Result<Vec<Packed128>, RbeError> {
        let seeds = RbeSeedsRecord::<B>::packed(self.coords.val(), self.bits.val());
        for seed in &seeds {
            seed.validate()?;
        }
        Ok(seeds)
    }

    /// Number of seeds: `layout.num_blocks()` of the layer they belong to.
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

    /// The transition probe to hand to the op, when it tracks gradients.
    pub(crate) fn probe(&self) -> Option<Tensor<B, 2>> {
        self.probe.op_input()
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
        let probe = self.probe.on(self.len(), device);
        Self {
            coords: self.coords.fork(device),
            bits: self.bits.fork(device),
            probe,
            radius_range: self.radius_range,
            header: self.header,
        }
    }

    fn to_device(self, device: &B::Device) -> Self {
        let probe = self.probe.on(self.len(), device);
        Self {
            coords: self.coords.to_device(device),
            bits: self.bits.to_device(device),
            probe,
            radius_range: self.radius_range,
            header: self.header,
        }
    }

    fn visit<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        visitor.enter_module("coords", CONTAINER);
        visitor.visit_float(&self.coords);
        visitor.exit_module("coords", CONTAINER);
        visitor.enter_module("bits", CONTAINER);
        visitor.visit_int(&self.bits);
        visitor.exit_module("bits", CONTAINER);
        self.probe.visit(self.bits.id, visitor);
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
            header: self.header,
        }
    }

    /// Takes the seeds of `record`.
    ///
    /// # Panics
    /// If the record was saved from a layer of another structure (block layout, residual or
    /// bias; see [`RbeLayerHeader`]) or holds another number of seeds: loading it would
    /// silently compute another weight. [`crate::load_checked`] returns these as
    /// [`RbeError::RecordMismatch`] instead.
    fn load_record(self, record: Self::Record) -> Self {
        if record.header != self.header {
            let describe = |h: Option<RbeLayerHeader>| {
                h.map_or_else(|| "no layer".to_string(), |h| h.to_string())
            };
            report_mismatch(RbeError::RecordMismatch {
                what: "RBE layer structure".into(),
                saved: describe(record.header),
                model: describe(self.header),
            });
            return self;
        }
        let saved = record.coords.shape().dims::<2>()[0];
        if saved != self.len() {
            report_mismatch(RbeError::RecordMismatch {
                what: "number of seeds".into(),
                saved: saved.to_string(),
                model: self.len().to_string(),
            });
            return self;
        }
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
            header: self.header,
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
        let probe = TransitionProbe::new(self.len(), &coords.device(), false);
        RbeSeeds {
            coords,
            bits: self.bits.valid(),
            probe,
            radius_range: self.radius_range,
            header: self.header,
        }
    }

    fn from_inner(module: Self::InnerModule) -> Self {
        let n_blocks = module.len();
        let coords: Param<Tensor<B, 2>> = Param::from_inner(module.coords);
        let probe = TransitionProbe::new(n_blocks, &coords.device(), true);
        RbeSeeds {
            coords,
            bits: Param::from_inner(module.bits),
            probe,
            radius_range: module.radius_range,
            header: module.header,
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
