//! Settings of the allocator the binaries use (mimalloc, declared as the global allocator in
//! `src/bin/dm-worker.rs` and `src/bin/dm-master.rs`, whose `--with-worker` runs a worker too).
//!
//! [`tune`] sets mimalloc's purge delay to 10 s instead of its 10 ms: a full load frees and
//! reallocates multi-MiB statement buffers all the time, and with 10 ms each one came back as
//! fresh, zeroed (huge) pages — 3 000–7 000 page faults per `bench/full_load.sh` run, about 600
//! with the delay (the worker's CPU moved within the run-to-run noise). `MIMALLOC_PURGE_DELAY`
//! in the environment still wins.
//!
//! [`tune`] also turns transparent huge pages off for the process (`PR_SET_THP_DISABLE`),
//! unless `MIMALLOC_ALLOW_THP` is set. mimalloc asks for huge pages on its arenas, so the first
//! touch of any fresh 4 KiB of them faulted in, and zeroed, a whole 2 MiB page: `perf` of a
//! `bench/full_load.sh` run had `clear_page_erms` at 7.3 % of the worker's CPU and at most of
//! the master's; with the pages off, page faults are 1.6 % of the worker's CPU.

// Links the C library behind `mi_option_set` into whatever uses this crate.
use mimalloc as _;

unsafe extern "C" {
    /// mimalloc's `mi_option_set`.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (v2 and v3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Call first thing in `main` of a binary whose global allocator is mimalloc.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option of the linked allocator; any value is valid.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        no_huge_pages();
    }
}

/// Transparent huge pages off for this process (Linux; a no-op elsewhere or on failure: the
/// pages are a cost here, never a need).
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn huge_pages_are_off_after_no_huge_pages() {
        super::no_huge_pages();
        // SAFETY: PR_GET_THP_DISABLE reads a flag of this process.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
    }
}
