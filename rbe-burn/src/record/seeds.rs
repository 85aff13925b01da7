//! [`RbeSeedsRecord`]: how the seeds of a layer are saved.
//!
//! Burn's recorders convert every float parameter to the recorder's float precision and every
//! int parameter to its int precision (`CompactRecorder`: f16 and i16). Seeds cannot survive
//! that: a 16-bit `r` is a different weight block, and the `hi` bits do not fit 16 bits. So
//! the seeds are saved as what they are, one [`Packed128`] (`hi`, `lo` as two u64) per block,
//! whatever the precision settings. Residual and bias are ordinary `Param`s and follow the
//! recorder's precision as they do in `Linear`.
//!
//! The record also carries the [`RbeLayerHeader`] of the layer it came from, so that loading
//! it into a layer of another block layout, or with or without a residual or bias that the
//! saved layer lacked, is refused instead of silently computing another `W`.

use burn::module::{Param, ParamId};
use burn::record::{PrecisionSettings, Record};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rbe_kernels::{KernelError, Packed128};
use serde::{Deserialize, Serialize};

use super::RbeLayerHeader;
use crate::formats::FormatId;

/// The saved part of [`crate::RbeSeeds`].
#[derive(Debug, Clone)]
pub struct RbeSeedsRecord<B: Backend> {
    /// The two floats of each seed, `[n_blocks, 2]`.
    pub coords: Param<Tensor<B, 2>>,
    /// The discrete part of each seed in the format's device layout,
    /// `[n_blocks, format.bit_words()]` (for the paper and sign formats `hi` as two i32 bit
    /// patterns).
    pub bits: Param<Tensor<B, 2, Int>>,
    /// The layer the seeds belong to; `None` for seeds built on their own.
    pub header: Option<RbeLayerHeader>,
    /// What the device tensors mean, so that saving packs them as the format stores them.
    /// A loaded record holds the header's format (the paper's without a header; seeds of
    /// another format are repacked when they load, see [`crate::RbeSeeds`]).
    pub format: FormatId,
}

/// The format a record's seeds are stored in: the header's, else the paper's (whose
/// packing records without a header have always used).
fn stored_format(header: Option<&RbeLayerHeader>) -> FormatId {
    header.map_or(FormatId::Paper, |h| h.format)
}

/// The serialised form of [`RbeSeedsRecord`], the same under every precision setting.
///
/// It carries a CRC-32 of the header and seeds, checked when it is deserialised: Burn's
/// recorders have no checksum of their own, and a flipped bit in a seed would otherwise load
/// as another weight block.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "UncheckedItem")]
pub struct RbeSeedsItem {
    /// Parameter id of `coords`, so optimizer state saved beside the model still matches.
    pub coords_id: String,
    /// Parameter id of `bits`.
    pub bits_id: String,
    /// The layer the seeds belong to.
    pub header: Option<RbeLayerHeader>,
    /// One seed per block, block-row-major. Serialising fails on a seed its format refuses
    /// (e.g. a non-finite `r` or `theta`), so a diverged model is never written;
    /// deserialising validates every seed with the header's format.
    pub seeds: Vec<Packed128>,
    /// [`RbeSeedsItem::checksum_of`] the header and seeds.
    pub checksum: u32,
    /// Why the device tensors could not be packed into seeds, if they could not (saving
    /// then fails with it). Never serialised.
    #[serde(skip)]
    pub unpackable: Option<String>,
}

/// The serialised fields of [`RbeSeedsItem`], in order.
#[derive(Serialize)]
struct ItemRef<'a> {
    coords_id: &'a str,
    bits_id: &'a str,
    header: &'a Option<RbeLayerHeader>,
    seeds: &'a [Packed128],
    checksum: u32,
}

impl Serialize for RbeSeedsItem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Some(why) = &self.unpackable {
            return Err(serde::ser::Error::custom(format!(
                "refusing to save the seeds: {why}"
            )));
        }
        let format = stored_format(self.header.as_ref());
        if let Some((index, err)) = self
            .seeds
            .iter()
            .enumerate()
            .find_map(|(i, seed)| format.validate_packed(seed).err().map(|e| (i, e)))
        {
            return Err(serde::ser::Error::custom(format!(
                "refusing to save seed {index}: {err}"
            )));
        }
        ItemRef {
            coords_id: &self.coords_id,
            bits_id: &self.bits_id,
            header: &self.header,
            seeds: &self.seeds,
            checksum: self.checksum,
        }
        .serialize(s)
    }
}

/// A seed as read, before its format checks it: the same serde shape as [`Packed128`],
/// whose own deserialisation would check the paper's floats in `lo` (which another format
/// may fill with other bits).
#[derive(Deserialize)]
struct RawSeed {
    hi: u64,
    lo: u64,
}

/// [`RbeSeedsItem`] as read, before its checksum and seeds are verified.
#[derive(Deserialize)]
struct UncheckedItem {
    coords_id: String,
    bits_id: String,
    header: Option<RbeLayerHeader>,
    seeds: Vec<RawSeed>,
    checksum: u32,
}

impl TryFrom<UncheckedItem> for RbeSeedsItem {
    type Error = String;

    fn try_from(item: UncheckedItem) -> Result<Self, String> {
        let seeds: Vec<Packed128> = item
            .seeds
            .into_iter()
            .map(|RawSeed { hi, lo }| Packed128 { hi, lo })
            .collect();
        let format = stored_format(item.header.as_ref());
        for (index, seed) in seeds.iter().enumerate() {
            format
                .validate_packed(seed)
                .map_err(|err| format!("seed {index}: {err}"))?;
        }
        let expected = Self::checksum_of(item.header.as_ref(), &seeds);
        if item.checksum != expected {
            return Err(format!(
                "RBE seed checksum mismatch (stored {:#010x}, computed {expected:#010x}): the seeds were altered",
                item.checksum
            ));
        }
        Ok(Self {
            coords_id: item.coords_id,
            bits_id: item.bits_id,
            header: item.header,
            seeds,
            checksum: item.checksum,
            unpackable: None,
        })
    }
}

impl RbeSeedsItem {
    /// CRC-32 of the header's sizes and every seed's 16-byte little-endian form.
    pub fn checksum_of(header: Option<&RbeLayerHeader>, seeds: &[Packed128]) -> u32 {
        let mut crc = crc32fast::Hasher::new();
        if let Some(h) = header {
            let l = h.layout;
            for v in [l.rows, l.cols, l.block_rows, l.block_cols, h.residual_rank] {
                crc.update(&(v as u64).to_le_bytes());
            }
            crc.update(&[u8::from(h.bias)]);
            // The paper format adds nothing, so records saved before formats existed verify;
            // every other format adds its name.
            if h.format != FormatId::Paper {
                crc.update(h.format.name().as_bytes());
            }
        }
        for seed in seeds {
            crc.update(&seed.to_le_bytes());
        }
        crc.finalize()
    }
}

impl<B: Backend> RbeSeedsRecord<B> {
    /// The seeds on the host, as `format` stores them; the paper's and the sign blueprint's
    /// floats may be non-finite (their [`FormatId::validate_packed`] reports it).
    ///
    /// # Errors
    /// Device rows the format cannot pack (e.g. a ternary `alpha` that is not finite).
    pub(crate) fn packed(
        coords: Tensor<B, 2>,
        bits: Tensor<B, 2, Int>,
        format: FormatId,
    ) -> Result<Vec<Packed128>, KernelError> {
        let words = format.bit_words();
        let coords = coords.into_data().convert::<f32>();
        let bits = bits.into_data().convert::<i64>();
        // `convert` has just produced exactly these element types.
        let coords = coords.as_slice::<f32>().expect("f32 after convert");
        let bits = bits.as_slice::<i64>().expect("i64 after convert");
        KernelError::check_len("bits", bits.len(), words * (coords.len() / 2))?;
        coords
            .chunks_exact(2)
            .zip(bits.chunks_exact(words))
            .enumerate()
            .map(|(s, (c, b))| format.to_packed(s, [c[0], c[1]], b))
            .collect()
    }

    /// The device tensors `(coords, bits)` of `seeds` in `format`'s layout. A seed the
    /// format cannot read (which records and `RbeSeeds::from_packed` have already refused)
    /// becomes NaN floats and zero bits, so that the finiteness checks of
    /// [`crate::load_checked`] report it instead of a panic here.
    pub(crate) fn upload(
        seeds: &[Packed128],
        format: FormatId,
        device: &B::Device,
    ) -> (Tensor<B, 2>, Tensor<B, 2, Int>) {
        let (n, words) = (seeds.len(), format.bit_words());
        let mut coords = Vec::with_capacity(2 * n);
        let mut bits = Vec::with_capacity(words * n);
        for seed in seeds {
            if format.from_packed(seed, &mut coords, &mut bits).is_err() {
                coords.extend([f32::NAN; 2]);
                bits.extend(std::iter::repeat_n(0, words));
            }
        }
        (
            Tensor::from_data(TensorData::new(coords, [n, 2]), device),
            Tensor::from_data(TensorData::new(bits, [n, words]), device),
        )
    }
}

impl<B: Backend> Record<B> for RbeSeedsRecord<B> {
    type Item<S: PrecisionSettings> = RbeSeedsItem;

    fn into_item<S: PrecisionSettings>(self) -> RbeSeedsItem {
        let (coords_id, coords, coords_mapper) = self.coords.consume();
        let (bits_id, bits, bits_mapper) = self.bits.consume();
        let packed = Self::packed(
            coords_mapper.on_save(coords),
            bits_mapper.on_save(bits),
            self.format,
        );
        let (seeds, unpackable) = match packed {
            Ok(seeds) => (seeds, None),
            Err(err) => (Vec::new(), Some(err.to_string())),
        };
        RbeSeedsItem {
            coords_id: coords_id.serialize(),
            bits_id: bits_id.serialize(),
            header: self.header,
            checksum: RbeSeedsItem::checksum_of(self.header.as_ref(), &seeds),
            seeds,
            unpackable,
        }
    }

    fn from_item<S: PrecisionSettings>(item: RbeSeedsItem, device: &B::Device) -> Self {
        let format = stored_format(item.header.as_ref());
        let (coords, bits) = Self::upload(&item.seeds, format, device);
        Self {
            coords: crate::trainable_param(ParamId::deserialize(&item.coords_id), coords),
            bits: Param::initialized(ParamId::deserialize(&item.bits_id), bits),
            header: item.header,
            format,
        }
    }
}
