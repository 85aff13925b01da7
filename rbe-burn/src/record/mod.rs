//! Saving and loading: how a layer's seeds are stored ([`RbeSeedsRecord`], exact under every
//! recorder), the structure a record must match ([`RbeLayerHeader`]), a checksummed file
//! recorder ([`RbeRecorder`]) and a loader that turns every way a file can be wrong into a
//! typed error ([`load_checked`]).

mod header;
pub(crate) mod load;
mod mismatch;
mod precheck;
mod recorder;
mod seeds;

pub use header::RbeLayerHeader;
pub use load::load_checked;
pub(crate) use mismatch::report_mismatch;
pub use recorder::RbeRecorder;
pub use seeds::{RbeSeedsItem, RbeSeedsRecord};
