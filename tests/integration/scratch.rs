//! A scratch folder per test, removed on drop.

use std::path::PathBuf;

/// `rbe-{name}-{pid}` in the temporary directory, emptied on creation (a crashed earlier run
/// may have left it) and removed on drop. The folder itself is not created: some tests check
/// what the code under test does with a path that does not exist yet.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rbe-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }

    /// `name` inside the folder, creating the folder first.
    pub fn path(&self, name: &str) -> PathBuf {
        std::fs::create_dir_all(&self.0).unwrap();
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
