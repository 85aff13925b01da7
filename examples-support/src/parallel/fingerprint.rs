//! [`Fingerprint`]: a digest of every parameter of a model, so that replicas can be compared
//! after each step without shipping their parameters to one another.

use std::hash::{DefaultHasher, Hash, Hasher};

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

/// One 64-bit digest per parameter (float, int and bool alike) of the values' bits, dtype
/// and shape, in the module's visiting order, with each parameter's dotted path.
///
/// Two replicas that applied the same gradients with the same optimizer state on the same
/// backend hold the same bits, so equal fingerprints are the expectation, not an
/// approximation; a collision of the digests would hide a difference with probability about
/// 2^-64 per parameter.
///
/// Computing one reads every parameter back to the host once (the parameters of an RBE
/// model are its seeds, so this is small beside a training step; on GPU backends it is a
/// synchronisation point).
///
/// RBE layers also show their transition probe to visitors as a float parameter that
/// carries the id of their bits; it never changes and is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    params: Vec<ParamDigest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ParamDigest {
    path: String,
    digest: u64,
}

impl Fingerprint {
    /// The fingerprint of `module`'s current parameters.
    pub fn of<B: Backend, M: Module<B>>(module: &M) -> Self {
        let mut digests = Digests::default();
        module.visit(&mut digests);
        Self {
            params: digests.params,
        }
    }

    /// The number of parameters digested.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether the module had no parameters.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The path of the first parameter (in visiting order) whose values differ between
    /// `self` and `other`, or `None` if they are the same. Fingerprints of differently
    /// structured modules differ at the first path that does not match.
    pub fn first_difference(&self, other: &Self) -> Option<String> {
        let pairs = self.params.iter().zip(&other.params);
        if let Some((mine, _)) = pairs.into_iter().find(|(a, b)| a != b) {
            return Some(mine.path.clone());
        }
        match self.params.len().cmp(&other.params.len()) {
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some(self.params[other.params.len()].path.clone()),
            std::cmp::Ordering::Less => Some(other.params[self.params.len()].path.clone()),
        }
    }

    /// The first replica (by index) whose fingerprint differs from the majority's, with the
    /// first parameter that differs; `None` when all agree.
    ///
    /// The majority is the fingerprint held by the most replicas; a tie goes to the one held
    /// by the lowest replica index. So with two replicas that disagree, replica 1 is named:
    /// two cannot tell which one is wrong, and replica 0 is the one whose model training
    /// returns.
    pub fn odd_one_out(prints: &[Fingerprint]) -> Option<(usize, String)> {
        let holders = |print: &Fingerprint| prints.iter().filter(|p| *p == print).count();
        let mut majority = prints.first()?;
        let mut votes = holders(majority);
        for print in prints {
            let count = holders(print);
            if count > votes {
                majority = print;
                votes = count;
            }
        }
        prints.iter().enumerate().find_map(|(replica, print)| {
            print
                .first_difference(majority)
                .map(|parameter| (replica, parameter))
        })
    }
}

/// Collects the digests and the dotted path of each parameter.
#[derive(Default)]
struct Digests {
    names: Vec<String>,
    /// The int parameter visited last: an RBE transition probe is the float parameter that
    /// follows its bits under the same id (Burn gives every other parameter its own id).
    last_int: Option<ParamId>,
    params: Vec<ParamDigest>,
}

impl Digests {
    fn push(&mut self, data: TensorData) {
        let mut hasher = DefaultHasher::new();
        data.dtype.hash(&mut hasher);
        data.shape.as_slice().hash(&mut hasher);
        data.as_bytes().hash(&mut hasher);
        self.params.push(ParamDigest {
            path: self.names.join("."),
            digest: hasher.finish(),
        });
    }
}

impl<B: Backend> ModuleVisitor<B> for Digests {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.names.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.names.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.last_int == Some(param.id) {
            return;
        }
        self.push(param.val().into_data());
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
        self.last_int = Some(param.id);
        self.push(param.val().into_data());
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<B, D, Bool>>) {
        self.push(param.val().into_data());
    }
}
