//! Settings of the allocator the binaries use (mimalloc, declared as the global allocator in
//! `src/bin/dm-worker.rs` and `src/bin/dm-master.rs`, whose `--with-worker` runs a worker too).
//!
//! [`tune`] sets mimalloc's purge delay to 10 s instead of its 10 ms: a full load frees and
//! reallocates multi-MiB statement buffers all the time, and with 10 ms each one came back as
//! fresh, zeroed (huge) pages — 3 000–7 000 page faults per `bench/full_load.sh` run, about 600
//! with the delay (the worker's CPU moved within the run-to-run noise). `MIMALLOC_PURGE_DELAY`
//! in the environment still wins.

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
}
