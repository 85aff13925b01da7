//! [`RbeSeeds`]: the seeds of one layer as Burn parameters.

use burn::module::{
    AutodiffModule, Content, Devices, HasAutodiffModule, Module, ModuleDisplay,
    ModuleDisplayDefault, ModuleMapper, ModuleVisitor, Param, ParamId,
};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use rbe_cubecl::{BlockLayout, Packed128};

use crate::RbeError;
use crate::probe::TransitionProbe;
use crate::seeds_record::{RbeLayerHeader, RbeSeedsRecord, report_mismatch};
use crate::sign::cells;
use crate::spec::{BitTraining, SeedFormat};

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
///
/// Sign-blueprint seeds ([`SeedFormat::SignBlueprint`]) hold `(alpha, mu)` in `coords` and
/// one bit per cell in `bits`. The clamp keeps `alpha >= 0` instead of bounding `r`. With
/// [`BitTraining::StraightThrough`] on an autodiff backend they also own a latent weight per
/// cell, `[n_blocks, 64]`, a float parameter of its own that the optimizer trains; every
/// [`Module::map`] re-derives the bits from it (`latent >= mu`). It is never saved, and it
/// is rebuilt from the seeds whenever seeds are loaded.
#[derive(Debug, Clone)]
pub struct RbeSeeds<B: Backend> {
    coords: Param<Tensor<B, 2>>,
    bits: Param<Tensor<B, 2, Int>>,
    probe: TransitionProbe<B>,
    radius_range: (f32, f32),
    header: Option<RbeLayerHeader>,
    sign: Option<SignSeeds<B>>,
}

/// What sign-blueprint seeds carry besides the two parameters.
#[derive(Debug, Clone)]
struct SignSeeds<B: Backend> {
    layout: BlockLayout,
    training: BitTraining,
    /// The straight-through latent weights, `[n_blocks, 64]`; only on autodiff backends.
    latent: Option<Param<Tensor<B, 2>>>,
}

impl<B: Backend> SignSeeds<B> {
    fn straight_through(&self) -> bool {
        self.training == BitTraining::StraightThrough
    }

    /// A latent leaf started from the seeds, when this training needs one on this backend.
    fn latent_for(
        &self,
        coords: &Tensor<B, 2>,
        bits: &Tensor<B, 2, Int>,
        autodiff: bool,
    ) -> Option<Param<Tensor<B, 2>>> {
        (autodiff && self.straight_through()).then(|| {
            let latent = cells::latent_from_seeds(coords.clone().detach(), bits.clone());
            // A fresh leaf whatever the graph of the seeds it came from.
            Param::initialized(ParamId::new(), latent.detach().require_grad())
        })
    }
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
            probe: TransitionProbe::new(
                seeds.len(),
                SeedFormat::Paper.signal_width(),
                device,
                true,
            ),
            radius_range,
            header: None,
            sign: None,
        })
    }

    /// Uploads sign-blueprint seeds of a layer tiled by `layout` (docs/math.md §9), whose
    /// bits learn by `training`. Fails for blocks over 64 cells, a wrong seed count, or a
    /// non-finite or negative `alpha`.
    pub fn from_sign_packed(
        seeds: &[Packed128],
        layout: &BlockLayout,
        training: BitTraining,
        device: &B::Device,
    ) -> Result<Self, RbeError> {
        rbe_cubecl::sign_blueprint::check_block(layout)?;
        if seeds.len() != layout.num_blocks() {
            return Err(RbeError::shape(
                "seeds",
                &[layout.num_blocks()],
                &[seeds.len()],
            ));
        }
        for seed in seeds {
            seed.validate()?;
            // Bit 1 is the upper level only for alpha >= 0; the encoder and the clamp keep it so.
            if seed.r() < 0.0 {
                return Err(RbeError::Config(format!(
                    "sign-blueprint alpha must be >= 0, got {}",
                    seed.r()
                )));
            }
        }
        let (coords, bits) = RbeSeedsRecord::<B>::upload(seeds, device);
        let sign = SignSeeds {
            layout: *layout,
            training,
            latent: None,
        };
        let autodiff = B::ad_enabled(device);
        let latent = sign.latent_for(&coords, &bits, autodiff);
        Ok(Self {
            coords: Param::initialized(ParamId::new(), coords.require_grad()),
            bits: Param::initialized(ParamId::new(), bits),
            probe: TransitionProbe::new(
                seeds.len(),
                SeedFormat::SignBlueprint.signal_width(),
                device,
                !sign.straight_through(),
            ),
            radius_range: (0.0, f32::INFINITY),
            header: None,
            sign: Some(SignSeeds { latent, ..sign }),
        })
    }

    /// What the seeds' bits mean.
    pub fn format(&self) -> SeedFormat {
        if self.sign.is_some() {
            SeedFormat::SignBlueprint
        } else {
            SeedFormat::Paper
        }
    }

    /// The straight-through latent weights, `[n_blocks, 64]`, while they exist (sign
    /// blueprint, [`BitTraining::StraightThrough`], autodiff backend).
    pub fn latent(&self) -> Option<Tensor<B, 2>> {
        self.sign.as_ref()?.latent.as_ref().map(Param::val)
    }

    /// A probe of this format, tracked when `autodiff` and the bits learn through it.
    fn fresh_probe(
        &self,
        n_blocks: usize,
        device: &B::Device,
        autodiff: bool,
    ) -> TransitionProbe<B> {
        let tracked = autodiff && !self.sign.as_ref().is_some_and(SignSeeds::straight_through);
        TransitionProbe::new(n_blocks, self.format().signal_width(), device, tracked)
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

    /// The tensor to hand to the op as its probe: the straight-through latent weights (whose
    /// gradient is then `dL/dw` per cell), else the transition probe when it tracks
    /// gradients.
    pub(crate) fn probe(&self) -> Option<Tensor<B, 2>> {
        self.latent().or_else(|| self.probe.op_input())
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
        let sign = self.sign.map(|sign| SignSeeds {
            latent: sign.latent.map(|l| l.fork(device)),
            ..sign
        });
        Self {
            coords: self.coords.fork(device),
            bits: self.bits.fork(device),
            probe,
            radius_range: self.radius_range,
            header: self.header,
            sign,
        }
    }

    fn to_device(self, device: &B::Device) -> Self {
        let probe = self.probe.on(self.len(), device);
        let sign = self.sign.map(|sign| SignSeeds {
            latent: sign.latent.map(|l| l.to_device(device)),
            ..sign
        });
        Self {
            coords: self.coords.to_device(device),
            bits: self.bits.to_device(device),
            probe,
            radius_range: self.radius_range,
            header: self.header,
            sign,
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
        if let Some(latent) = self.sign.as_ref().and_then(|s| s.latent.as_ref()) {
            visitor.enter_module("latent", CONTAINER);
            visitor.visit_float(latent);
            visitor.exit_module("latent", CONTAINER);
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
        let mut bits = mapper.map_int(self.bits);
        mapper.exit_module("bits", CONTAINER);
        let mut sign = self.sign;
        if let Some(SignSeeds {
            layout,
            latent: latent @ Some(_),
            ..
        }) = sign.as_mut()
        {
            mapper.enter_module("latent", CONTAINER);
            let mapped = mapper.map_float(latent.take().expect("matched Some"));
            mapper.exit_module("latent", CONTAINER);
            // Straight-through: the bits follow the (possibly updated) latent weights and mu.
            let (id, value, param_mapper) = bits.consume();
            drop(value);
            let derived = cells::bits_from_latent(mapped.val(), coords.val(), layout);
            bits = Param::from_mapped_value(id, derived, param_mapper);
            *latent = Some(mapped);
        }
        Self {
            coords,
            bits,
            probe: self.probe,
            radius_range: self.radius_range,
            header: self.header,
            sign,
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
        let coords = self.coords.load_record(record.coords);
        let bits = self.bits.load_record(record.bits);
        // A latent from before the load would overwrite the loaded bits at the next update.
        let sign = self.sign.map(|sign| {
            let autodiff = sign.latent.is_some();
            SignSeeds {
                latent: sign.latent_for(&coords.val(), &bits.val(), autodiff),
                ..sign
            }
        });
        Self {
            coords,
            bits,
            sign,
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
        let probe = TransitionProbe::new(
            self.len(),
            self.format().signal_width(),
            &coords.device(),
            false,
        );
        RbeSeeds {
            coords,
            bits: self.bits.valid(),
            probe,
            radius_range: self.radius_range,
            header: self.header,
            sign: self.sign.as_ref().map(|s| SignSeeds {
                layout: s.layout,
                training: s.training,
                latent: None,
            }),
        }
    }

    fn from_inner(module: Self::InnerModule) -> Self {
        let n_blocks = module.len();
        let coords: Param<Tensor<B, 2>> = Param::from_inner(module.coords);
        let bits: Param<Tensor<B, 2, Int>> = Param::from_inner(module.bits);
        let sign = module.sign.map(|s| SignSeeds {
            layout: s.layout,
            training: s.training,
            latent: None,
        });
        let latent = sign
            .as_ref()
            .and_then(|s| s.latent_for(&coords.val(), &bits.val(), true));
        let seeds = RbeSeeds {
            probe: TransitionProbe::new(0, 1, &coords.device(), false),
            coords,
            bits,
            radius_range: module.radius_range,
            header: module.header,
            sign: sign.map(|s| SignSeeds { latent, ..s }),
        };
        RbeSeeds {
            probe: seeds.fresh_probe(n_blocks, &seeds.coords.device(), true),
            ..seeds
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
            .add("format", &format!("{:?}", self.format()))
            .add("radius_range", &format!("{:?}", self.radius_range))
            .optional()
    }
}

impl<B: Backend> ModuleDisplay for RbeSeeds<B> {}
