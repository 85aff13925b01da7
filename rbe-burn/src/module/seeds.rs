//! [`RbeSeeds`]: the seeds of one layer as Burn parameters.

use burn::module::{
    AutodiffModule, Content, Devices, HasAutodiffModule, Module, ModuleDisplay,
    ModuleDisplayDefault, ModuleMapper, ModuleVisitor, Param, ParamId,
};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use rbe_kernels::{BlockLayout, DecodeCache, Packed128};

use crate::RbeError;
use crate::backend::{RbeBackend, RbeSpec};
use crate::formats::SeedFormat;
use crate::record::{RbeLayerHeader, RbeSeedsRecord, report_mismatch};
use crate::trainable_param;
use crate::training::TransitionProbe;

/// The seeds of one RBE layer, one per block.
///
/// | field | tensor | role |
/// |---|---|---|
/// | `coords` | float `[n_blocks, 2]`, the two floats of each seed | trained by any Burn optimizer |
/// | `bits` | int `[n_blocks, format.bit_words()]`, i32 bit patterns | moved by the format's bit rule |
///
/// What the floats and bits mean is the layer's [`SeedFormat`]: `(r, theta)` and CORDIC
/// directions (`hi` as two i32 halves) in the paper's format, `(alpha, mu)` and one sign
/// per cell in the sign blueprint, `(alpha, 0)` and four words of 2-bit levels in the
/// ternary format. Both are saved bit for bit by every Burn recorder, at any precision setting:
/// the record stores the seeds as [`Packed128`]s (see [`RbeSeedsRecord`]), together with the
/// [`RbeLayerHeader`] of the layer they belong to.
///
/// Three behaviours differ from a plain pair of `Param`s:
/// - **The format's constraint.** Every [`Module::map`] (which is how Burn optimizers update
///   parameters) applies the format's constraint to the floats afterwards (the paper's
///   radius clamp, the sign blueprint's `alpha >= 0`), so any optimizer keeps the seeds
///   valid without an adaptor.
/// - **The bits' channel.** On an autodiff backend the module owns a float leaf that is
///   passed to the op and receives the bits' signal as its gradient: the transition probe,
///   or, for a format trained straight-through, the latent weights (a float parameter of
///   their own that the optimizer trains; after every [`Module::map`] the bits follow
///   them: a forward derives them natively on its backend, any other reader by the
///   format's tensor-op rule, bit for bit the same). Neither is saved. The module `training::probe` describes the whole flow.
/// - **The decoded seeds.** The module owns a [`DecodeCache`] shared by its clones: a CPU
///   backend decodes the seeds into it once and reuses the decode until the seeds change.
#[derive(Debug, Clone)]
pub struct RbeSeeds<B: Backend> {
    coords: Param<Tensor<B, 2>>,
    bits: Param<Tensor<B, 2, Int>>,
    probe: TransitionProbe<B>,
    latent: Option<Param<Tensor<B, 2>>>,
    layout: BlockLayout,
    format: SeedFormat,
    header: Option<RbeLayerHeader>,
    cache: DecodeCache,
}

impl<B: Backend> RbeSeeds<B> {
    /// Uploads the seeds of a layer tiled by `layout` whose seeds mean what `format` says.
    /// Fails for a layout the format does not take, a wrong seed count, or a seed the format
    /// refuses (non-finite floats, a negative sign-blueprint `alpha`).
    pub fn from_packed(
        seeds: &[Packed128],
        layout: &BlockLayout,
        format: SeedFormat,
        device: &B::Device,
    ) -> Result<Self, RbeError> {
        format.validate(layout)?;
        if seeds.len() != layout.num_blocks() {
            return Err(RbeError::shape(
                "seeds",
                &[layout.num_blocks()],
                &[seeds.len()],
            ));
        }
        for seed in seeds {
            format.check_seed(seed)?;
        }
        let (coords, bits) = RbeSeedsRecord::<B>::upload(seeds, format.id(), device);
        let (probe, latent) = Self::channel(&format, &coords, &bits, B::ad_enabled(device));
        Ok(Self {
            coords: trainable_param(ParamId::new(), coords),
            bits: Param::initialized(ParamId::new(), bits),
            probe,
            latent,
            layout: *layout,
            format,
            header: None,
            cache: DecodeCache::default(),
        })
    }

    /// The bits' channel for seeds `(coords, bits)` of `format`: on an autodiff backend
    /// (`autodiff`) the latent weights when the format trains through them, else a probe
    /// that is tracked when the format's bits learn from a signal; elsewhere an untracked
    /// probe and no latent.
    fn channel(
        format: &SeedFormat,
        coords: &Tensor<B, 2>,
        bits: &Tensor<B, 2, Int>,
        autodiff: bool,
    ) -> (TransitionProbe<B>, Option<Param<Tensor<B, 2>>>) {
        let latent = Self::fresh_latent(format, coords, bits, autodiff);
        // The probe carries the signal unless the latent weights do.
        let tracked = autodiff && latent.is_none() && format.learns_bits_by_signal();
        let probe = TransitionProbe::new(
            coords.dims()[0],
            format.signal_width(),
            &coords.device(),
            tracked,
        );
        (probe, latent)
    }

    /// A latent leaf started from the seeds, when the format trains through one on this
    /// backend.
    fn fresh_latent(
        format: &SeedFormat,
        coords: &Tensor<B, 2>,
        bits: &Tensor<B, 2, Int>,
        autodiff: bool,
    ) -> Option<Param<Tensor<B, 2>>> {
        if !autodiff {
            return None;
        }
        let latent = format.latent(coords.clone().detach(), bits.clone())?;
        // A fresh leaf whatever the graph of the seeds it came from.
        Some(Param::initialized(
            ParamId::new(),
            latent.detach().require_grad(),
        ))
    }

    /// What the seeds' bits mean.
    pub fn format(&self) -> SeedFormat {
        self.format
    }

    /// How the layer's weight is tiled into these seeds.
    pub fn layout(&self) -> BlockLayout {
        self.layout
    }

    /// The latent weights, `[n_blocks, 64]`, while they exist (a format trained
    /// straight-through, on an autodiff backend).
    pub fn latent(&self) -> Option<Tensor<B, 2>> {
        self.latent.as_ref().map(Param::val)
    }

    /// The op's view of these seeds: layout, format, whether a backward must produce the
    /// bits' signal, and the seeds' decode cache.
    pub fn spec(&self) -> RbeSpec {
        RbeSpec {
            layout: self.layout,
            format: self.format,
            signal: self.latent.is_some() || self.format.learns_bits_by_signal(),
            cache: self.cache.clone(),
        }
    }

    /// The same seeds under other settings of their format (same parameters and ids; the
    /// bits' channel follows the new settings).
    pub(crate) fn with_format(self, format: SeedFormat) -> Self {
        let coords = self.coords.val();
        let autodiff = B::ad_enabled(&coords.device());
        let (probe, latent) = Self::channel(&format, &coords, &self.bits.val(), autodiff);
        Self {
            probe,
            latent,
            format,
            cache: DecodeCache::default(),
            ..self
        }
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

    /// Downloads the seeds, packed as the format stores them. Fails if training drove a
    /// float to NaN or infinity, or the seeds are otherwise not storable in their format.
    pub fn to_packed(&self) -> Result<Vec<Packed128>, RbeError> {
        let format = self.format.id();
        let seeds = RbeSeedsRecord::<B>::packed(self.coords.val(), self.bits.val(), format)?;
        for seed in &seeds {
            format.validate_packed(seed)?;
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

    /// The two floats of each seed, `[n_blocks, 2]`.
    pub fn coords(&self) -> Tensor<B, 2> {
        self.coords.val()
    }

    /// The discrete part of each seed in the format's device layout,
    /// `[n_blocks, format.bit_words()]` (the paper's and the sign blueprint's: `hi` as two
    /// i32 bit patterns).
    pub fn bits(&self) -> Tensor<B, 2, Int> {
        self.bits.val()
    }

    /// The parameter id of `coords`.
    pub fn coords_id(&self) -> ParamId {
        self.coords.id
    }

    /// The parameter id of `bits`; the bits' signal is keyed by it in
    /// [`burn::optim::GradientsParams`].
    pub fn bits_id(&self) -> ParamId {
        self.bits.id
    }

    /// The tensor to hand to the op as its probe: the latent weights (whose gradient is then
    /// `dL/dw` per cell), else the transition probe when it tracks gradients.
    pub(crate) fn probe(&self) -> Option<Tensor<B, 2>> {
        self.latent().or_else(|| self.probe.op_input())
    }

    /// The bits of a format trained straight-through, as a parameter (with the id of the
    /// current bits) that derives them from `latent` by the format's tensor-op rule when
    /// first read. A forward never reads it: it derives the bits natively on its backend
    /// ([`RbeSeeds::op_bits`]), so the tensor-op rule runs only for what reads the bits
    /// outside a forward (a record, `valid()`, a visitor), once per update.
    fn derived_bits(&self, latent: Tensor<B, 2>, coords: Tensor<B, 2>) -> Param<Tensor<B, 2, Int>> {
        let (format, layout) = (self.format, self.layout);
        let device = latent.device();
        let (latent, coords) = (latent.detach(), coords.detach());
        Param::uninitialized(
            self.bits.id,
            move |_, _| format.bits_from_latent(latent.clone(), coords.clone(), &layout),
            device,
            false,
            [layout.num_blocks(), format.bit_words()].into(),
        )
    }

    /// The coords under the format's constraint, as a fresh leaf with the same gradient
    /// requirement.
    fn constrain(&self, coords: Tensor<B, 2>) -> Tensor<B, 2> {
        let require_grad = coords.is_require_grad();
        let constrained = self
            .format
            .constrain(coords.detach().set_require_grad(false));
        if require_grad {
            constrained.require_grad()
        } else {
            constrained
        }
    }
}

impl<B: RbeBackend> RbeSeeds<B> {
    /// The bits a forward hands to the op: for a format trained straight-through whose
    /// latent weights changed since the bits were last read, derived from them by the
    /// backend's native pass ([`RbeBackend::rbe_bits_from_latent`], bit for bit the rule
    /// [`RbeSeeds::bits`] applies); otherwise the stored bits.
    pub(crate) fn op_bits(&self, spec: &RbeSpec) -> Tensor<B, 2, Int> {
        match &self.latent {
            Some(latent) if !self.bits.is_initialized() => {
                Tensor::from_primitive(B::rbe_bits_from_latent(
                    latent.val().detach().into_primitive().tensor(),
                    self.coords.val().detach().into_primitive().tensor(),
                    spec,
                ))
            }
            _ => self.bits.val(),
        }
    }
}

impl<B: Backend> RbeSeeds<B> {
    /// Loaded seeds in this layer's device layout. A record is uploaded in its header's
    /// format, or the paper's without a header; seeds built on their own in another format
    /// are converted here through their 16-byte form, which the paper's layout holds bit
    /// for bit (a no-op in effect for the sign blueprint, which shares that layout).
    fn repack(
        format: crate::formats::FormatId,
        coords: Param<Tensor<B, 2>>,
        bits: Param<Tensor<B, 2, Int>>,
        stored: crate::formats::FormatId,
    ) -> (Param<Tensor<B, 2>>, Param<Tensor<B, 2, Int>>) {
        if stored == format {
            return (coords, bits);
        }
        let device = coords.val().device();
        let seeds =
            RbeSeedsRecord::<B>::packed(coords.val(), bits.val(), stored).unwrap_or_default();
        let (new_coords, new_bits) = RbeSeedsRecord::<B>::upload(&seeds, format, &device);
        let (coords_id, old, coords_mapper) = coords.consume();
        let require_grad = old.is_require_grad();
        let new_coords = if require_grad {
            new_coords.require_grad()
        } else {
            new_coords
        };
        let (bits_id, _, bits_mapper) = bits.consume();
        (
            Param::from_mapped_value(coords_id, new_coords, coords_mapper),
            Param::from_mapped_value(bits_id, new_bits, bits_mapper),
        )
    }
}

impl<B: Backend> Module<B> for RbeSeeds<B> {
    type Record = RbeSeedsRecord<B>;

    fn collect_devices(&self, devices: Devices<B>) -> Devices<B> {
        // The bits live where the coords do; asking them would derive bits still pending
        // from the latent weights, by tensor ops, on every call.
        self.coords.collect_devices(devices)
    }

    fn fork(self, device: &B::Device) -> Self {
        Self {
            probe: self.probe.on(self.len(), device),
            coords: self.coords.fork(device),
            bits: self.bits.fork(device),
            latent: self.latent.map(|l| l.fork(device)),
            ..self
        }
    }

    fn to_device(self, device: &B::Device) -> Self {
        Self {
            probe: self.probe.on(self.len(), device),
            coords: self.coords.to_device(device),
            bits: self.bits.to_device(device),
            latent: self.latent.map(|l| l.to_device(device)),
            ..self
        }
    }

    fn visit<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        let container = self.format.id().container();
        visitor.enter_module("coords", container);
        visitor.visit_float(&self.coords);
        visitor.exit_module("coords", container);
        visitor.enter_module("bits", container);
        visitor.visit_int(&self.bits);
        visitor.exit_module("bits", container);
        self.probe.visit(self.bits.id, visitor);
        if let Some(latent) = &self.latent {
            visitor.enter_module("latent", container);
            visitor.visit_float(latent);
            visitor.exit_module("latent", container);
        }
    }

    fn map<M: ModuleMapper<B>>(self, mapper: &mut M) -> Self {
        let container = self.format.id().container();
        mapper.enter_module("coords", container);
        let coords = mapper.map_float(self.coords.clone());
        mapper.exit_module("coords", container);
        let coords = {
            let (id, tensor, param_mapper) = coords.consume();
            Param::from_mapped_value(id, self.constrain(tensor), param_mapper)
        };
        let latent = self.latent.clone().map(|latent| {
            mapper.enter_module("latent", container);
            let mapped = mapper.map_float(latent);
            mapper.exit_module("latent", container);
            mapped
        });
        let bits = match &latent {
            // Straight-through: the bits follow the (possibly updated) latent weights, so
            // they are not mapped: mapping would read, and so derive, the stale ones.
            Some(latent) => self.derived_bits(latent.val(), coords.val()),
            // The container names the format, so a mapper that moves bits knows the rule.
            None => {
                mapper.enter_module("bits", container);
                let bits = mapper.map_int(self.bits.clone());
                mapper.exit_module("bits", container);
                bits
            }
        };
        Self {
            coords,
            bits,
            latent,
            // New values: a decode of the old ones must not be found under these seeds'
            // cache, and the old module may still run with its own.
            cache: DecodeCache::default(),
            ..self
        }
    }

    /// Takes the seeds of `record`.
    ///
    /// # Panics
    /// If the record was saved from a layer of another structure (block layout, format,
    /// residual or bias; see [`RbeLayerHeader`]) or holds another number of seeds: loading it
    /// would silently compute another weight. [`crate::load_checked`] returns these as
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
        let stored = record.format;
        let coords = self.coords.load_record(record.coords);
        let bits = self.bits.load_record(record.bits);
        let (coords, bits) = Self::repack(self.format.id(), coords, bits, stored);
        // A latent from before the load would overwrite the loaded bits at the next update.
        let latent = Self::fresh_latent(
            &self.format,
            &coords.val(),
            &bits.val(),
            self.latent.is_some(),
        );
        Self {
            coords,
            bits,
            latent,
            cache: DecodeCache::default(),
            ..self
        }
    }

    fn into_record(self) -> Self::Record {
        RbeSeedsRecord {
            coords: self.coords.into_record(),
            bits: self.bits.into_record(),
            header: self.header,
            format: self.format.id(),
        }
    }

    fn num_params(&self) -> usize {
        Module::num_params(&self.coords)
    }
}

impl<B: AutodiffBackend> AutodiffModule<B> for RbeSeeds<B> {
    type InnerModule = RbeSeeds<B::InnerBackend>;

    fn valid(&self) -> Self::InnerModule {
        let (coords, bits) = (self.coords.valid(), self.bits.valid());
        let (probe, latent) = RbeSeeds::channel(&self.format, &coords.val(), &bits.val(), false);
        RbeSeeds {
            probe,
            coords,
            bits,
            latent,
            layout: self.layout,
            format: self.format,
            header: self.header,
            // Same values: the validation module can reuse the decode.
            cache: self.cache.clone(),
        }
    }

    fn from_inner(module: Self::InnerModule) -> Self {
        let coords: Param<Tensor<B, 2>> = Param::from_inner(module.coords);
        let bits: Param<Tensor<B, 2, Int>> = Param::from_inner(module.bits);
        let (probe, latent) = Self::channel(&module.format, &coords.val(), &bits.val(), true);
        RbeSeeds {
            probe,
            coords,
            bits,
            latent,
            layout: module.layout,
            format: module.format,
            header: module.header,
            cache: module.cache,
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
            .add("format", &format!("{:?}", self.format))
            .optional()
    }
}

impl<B: Backend> ModuleDisplay for RbeSeeds<B> {}
