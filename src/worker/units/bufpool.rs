//! A bounded pool of byte buffers handed on from file to file and statement to statement: the
//! dump's render buffers ([`super::dump`]'s chunk writers) and the load's reader and LOAD DATA
//! rows buffers ([`super::load`]'s file tasks). A fresh multi-MiB buffer per file or statement
//! came back as freshly faulted, zeroed (huge) pages each time — the largest single cost of the
//! worker in bench/full_load.sh before the pools.

use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

/// Buffers kept for reuse (a clone shares them).
#[derive(Debug, Clone)]
pub struct BufPool {
    bufs: Arc<Mutex<Vec<Vec<u8>>>>,
    /// The capacity of a buffer made when none is kept.
    fresh: usize,
    /// The capacities [`BufPool::put`] keeps (not a buffer that lost its capacity, nor one a
    /// huge statement grew once).
    keep: RangeInclusive<usize>,
    /// How many it keeps at most.
    max_kept: usize,
}

impl BufPool {
    pub fn new(fresh: usize, keep: RangeInclusive<usize>, max_kept: usize) -> BufPool {
        BufPool {
            bufs: Arc::default(),
            fresh,
            keep,
            max_kept,
        }
    }

    fn pop(&self) -> Option<Vec<u8>> {
        self.bufs.lock().ok().and_then(|mut v| v.pop())
    }

    /// An empty buffer: a kept one, else a new one of the pool's fresh capacity.
    pub fn take(&self) -> Vec<u8> {
        let mut b = self.pop().unwrap_or_else(|| Vec::with_capacity(self.fresh));
        b.clear();
        b
    }

    /// A buffer at least `len` bytes long, its contents stale: a kept one that long, else a
    /// new, zeroed one (a kept buffer is not grown: growing copies its stale bytes into
    /// freshly faulted pages).
    pub fn take_filled(&self, len: usize) -> Vec<u8> {
        match self.pop() {
            Some(b) if b.len() >= len => b,
            _ => vec![0; len],
        }
    }

    /// Gives a buffer back, kept when its capacity is in the pool's range and the pool is not
    /// full.
    pub fn put(&self, b: Vec<u8>) {
        if !self.keep.contains(&b.capacity()) {
            return;
        }
        if let Ok(mut v) = self.bufs.lock()
            && v.len() < self.max_kept
        {
            v.push(b);
        }
    }

    /// How many buffers it keeps now.
    pub fn kept(&self) -> usize {
        self.bufs.lock().map_or(0, |v| v.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_reuses_empties_and_put_keeps_within_bounds() {
        let pool = BufPool::new(16, 8..=64, 2);
        let mut a = pool.take();
        assert!(a.capacity() >= 16, "fresh capacity");
        a.extend_from_slice(b"stale");
        let ptr = a.as_ptr();
        pool.put(a);
        let b = pool.take();
        assert_eq!(b.as_ptr(), ptr, "the same allocation is reused");
        assert!(b.is_empty());
        pool.put(Vec::with_capacity(4));
        pool.put(Vec::with_capacity(1000));
        assert_eq!(pool.kept(), 0, "capacities outside the range are not kept");
        for _ in 0..5 {
            pool.put(Vec::with_capacity(32));
        }
        assert_eq!(pool.kept(), 2, "at most max_kept");
    }

    #[test]
    fn take_filled_keeps_stale_bytes_and_never_grows_a_short_buffer() {
        let pool = BufPool::new(0, 1..=1 << 20, 4);
        let a = pool.take_filled(100);
        assert_eq!(a.len(), 100);
        let ptr = a.as_ptr();
        pool.put(a);
        let b = pool.take_filled(50);
        assert_eq!((b.len(), b.as_ptr()), (100, ptr), "long enough: as it was");
        pool.put(b);
        let c = pool.take_filled(200);
        assert_eq!(c.len(), 200, "too short: a new one");
        assert!(c.iter().all(|&x| x == 0));
        assert_eq!(pool.kept(), 0, "the short one was dropped");
    }
}
