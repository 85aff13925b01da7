//! Checks a record file before Burn's recorder decodes it, for damage that would otherwise
//! abort the process, which no `catch_unwind` in [`crate::load_checked`] can stop.
//!
//! Burn 0.21 trusts a saved tensor's shape: when the saved element type differs from the
//! recorder's, `TensorData::convert` allocates `product(shape)` elements before looking at
//! the bytes, so a damaged shape (or dtype) becomes an allocation of petabytes. Bincode also
//! allocates any length it reads. The self-describing formats (MessagePack, JSON) are walked
//! once as plain values and every `TensorData` (a map with `bytes`, `shape` and `dtype`) must
//! hold exactly the bytes its shape and dtype imply. Bincode is not self-describing; a `.bin`
//! file is decoded once from memory with a bounded byte budget, which stops huge lengths, but
//! a damaged shape that still decodes reaches Burn's conversion (see the note in `precheck`).

use std::path::Path;

use burn::module::Module;
use burn::record::{BurnRecord, FileRecorder, Record, Recorder};
use burn::tensor::backend::Backend;
use serde::Deserialize;
use serde::de::{MapAccess, SeqAccess, Visitor};

use crate::RbeError;

fn corrupted(file: &Path, reason: String) -> RbeError {
    RbeError::Corrupted {
        path: file.display().to_string(),
        reason,
    }
}

/// Runs the check that fits the recorder's format, by its file extension.
pub(crate) fn precheck<B, M, R>(path: &Path) -> Result<(), RbeError>
where
    B: Backend,
    M: Module<B>,
    R: FileRecorder<B>,
{
    let extension = R::file_extension();
    let file = path.with_extension(extension);
    match extension {
        "bin" => precheck_bincode::<B, M, R>(&file),
        "mpk" | "json" => {
            let Ok(bytes) = std::fs::read(&file) else {
                return Ok(());
            };
            let node = if extension == "mpk" {
                rmp_serde::from_slice::<Node>(&bytes).map_err(|e| e.to_string())
            } else {
                serde_json::from_slice::<Node>(&bytes).map_err(|e| e.to_string())
            };
            // A file that does not even parse is left to the recorder, which reports it.
            match node {
                Ok(node) => check_tensors(&node).map_err(|reason| corrupted(&file, reason)),
                Err(_) => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// A self-describing document as plain values; byte strings keep only their length.
enum Node {
    Bytes(usize),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Str(String),
    Uint(u64),
    Other,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(u64::try_from(v).map_or(Node::Other, Node::Uint))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Uint(v))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Bytes(v.len()))
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Node::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Bytes per element of a saved `DType`, `None` for the ones not checked (quantized).
fn element_size(dtype: &Node) -> Option<usize> {
    let name = match dtype {
        Node::Str(name) => name.as_str(),
        Node::Map(_) => {
            return match dtype.get("Bool") {
                Some(Node::Str(store)) if store == "U32" => Some(4),
                Some(Node::Str(_)) => Some(1),
                _ => None,
            };
        }
        _ => return None,
    };
    Some(match name {
        "F64" | "I64" | "U64" => 8,
        "F32" | "Flex32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "Bool" => 1,
        _ => return None,
    })
}

/// Every `TensorData` in `node` holds the bytes its shape and dtype imply.
fn check_tensors(node: &Node) -> Result<(), String> {
    if let (Some(bytes), Some(Node::Seq(shape)), Some(dtype)) =
        (node.get("bytes"), node.get("shape"), node.get("dtype"))
    {
        let len = match bytes {
            Node::Bytes(n) => *n,
            Node::Seq(items) => items.len(),
            _ => return Err("tensor bytes are not a byte string".into()),
        };
        if let Some(size) = element_size(dtype) {
            let expected = shape.iter().try_fold(size, |acc, dim| match dim {
                Node::Uint(d) => usize::try_from(*d).ok().and_then(|d| acc.checked_mul(d)),
                _ => None,
            });
            if expected != Some(len) {
                return Err(format!(
                    "a tensor's shape and dtype call for {} bytes, it holds {len}",
                    expected.map_or("an impossible number of".to_string(), |n| n.to_string())
                ));
            }
        }
        return Ok(());
    }
    match node {
        Node::Seq(items) => items.iter().try_for_each(check_tensors),
        Node::Map(entries) => entries.iter().try_for_each(|(_, v)| check_tensors(v)),
        _ => Ok(()),
    }
}

/// Bincode, the format of Burn's `BinFileRecorder`, allocates a string or byte buffer as long
/// as the length it reads from the file before reading the bytes: a damaged length aborts the
/// process with an allocation failure, which no `catch_unwind` can stop. So `.bin` files are
/// decoded once from memory first, with a limit on the bytes claimed no larger than needed
/// for the file, which turns such a length into an error. Files over 4 GiB skip the check.
fn precheck_bincode<B, M, R>(file: &Path) -> Result<(), RbeError>
where
    B: Backend,
    M: Module<B>,
    R: FileRecorder<B>,
{
    type Item<B, M, R> =
        BurnRecord<<<M as Module<B>>::Record as Record<B>>::Item<<R as Recorder<B>>::Settings>, B>;
    let Ok(bytes) = std::fs::read(file) else {
        // The recorder reports a missing or unreadable file in its own words.
        return Ok(());
    };
    let standard = bincode::config::standard();
    let decoded = match bytes.len() {
        0..=0x0100_0000 => bincode::serde::decode_from_slice::<Item<B, M, R>, _>(
            &bytes,
            standard.with_limit::<0x0100_0000>(),
        )
        .map(drop),
        0x0100_0001..=0x1000_0000 => bincode::serde::decode_from_slice::<Item<B, M, R>, _>(
            &bytes,
            standard.with_limit::<0x1000_0000>(),
        )
        .map(drop),
        0x1000_0001..=0x1_0000_0000 => bincode::serde::decode_from_slice::<Item<B, M, R>, _>(
            &bytes,
            standard.with_limit::<0x1_0000_0000>(),
        )
        .map(drop),
        _ => Ok(()),
    };
    decoded.map_err(|err| corrupted(file, err.to_string()))
}
