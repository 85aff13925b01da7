//! Records that do not fit their module, reported from inside Burn's `load_record` (which
//! cannot return an error) to [`crate::load_checked`].

use std::cell::RefCell;

use crate::RbeError;

thread_local! {
    /// While [`crate::load_checked`] runs, the mismatches `load_record` finds land here
    /// instead of panicking.
    static MISMATCHES: RefCell<Option<Vec<RbeError>>> = const { RefCell::new(None) };
}

/// Reports a record that does not fit its module: collected by an enclosing
/// [`collect_mismatches`], a panic otherwise (Burn's `load_record` cannot return an error).
pub(crate) fn report_mismatch(err: RbeError) {
    let unreported = MISMATCHES.with(|sink| match sink.borrow_mut().as_mut() {
        Some(found) => {
            found.push(err);
            None
        }
        None => Some(err),
    });
    if let Some(err) = unreported {
        panic!("{err}; use rbe_burn::load_checked to get this as an error");
    }
}

/// Runs `load` and returns its value with every mismatch it reported.
pub(crate) fn collect_mismatches<T>(load: impl FnOnce() -> T) -> (T, Vec<RbeError>) {
    /// Puts the enclosing sink back, also when `load` unwinds.
    struct Restore(Option<Vec<RbeError>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            MISMATCHES.with(|sink| *sink.borrow_mut() = self.0.take());
        }
    }
    let restore = Restore(MISMATCHES.with(|sink| sink.replace(Some(Vec::new()))));
    let value = load();
    let found = MISMATCHES.with(|sink| sink.borrow_mut().take());
    drop(restore);
    (value, found.unwrap_or_default())
}
