//! The build banner shared by all binaries (`dmctl -V`, `dm-master -V`, `dm-worker -V`),
//! in DM's layout with the Go line replaced by the Rust compiler's.

/// Release version of this build.
pub const RELEASE: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// Multi-line banner: release, git commit, git branch, UTC build time, rustc version.
pub fn banner() -> String {
    format!(
        "Release Version: {}\nGit Commit Hash: {}\nGit Branch: {}\nUTC Build Time: {}\nRust Version: {}",
        RELEASE,
        env!("DM_GIT_HASH"),
        env!("DM_GIT_BRANCH"),
        env!("DM_BUILD_TIME"),
        env!("DM_RUSTC_VERSION"),
    )
}
