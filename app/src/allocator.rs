//! The process's allocator.
//!
//! Training and batched decoding allocate and free multi-megabyte tensors at a high rate.
//! glibc's malloc returns each to the kernel and page-faults it back in: measured on
//! `timbrel bench train` (small, batch 8), 11.4 M page faults and 70 s of system time in an
//! 85 s run, 1,950 samples/s. mimalloc with purging off keeps freed memory for reuse:
//! 9 k page faults, 3,430 samples/s.

#[cfg(not(test))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// In the unit tests, mimalloc behind a counter of allocator calls per thread
/// (`testkit::alloc`), so a test can show that a piece of code (the audio callback) never
/// allocates or frees.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: testkit::alloc::Counting<mimalloc::MiMalloc> =
    testkit::alloc::Counting(mimalloc::MiMalloc);

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (libmimalloc-sys exports no
/// constant for it); the test below checks the index still names that option.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Never hand freed memory back to the kernel (purge delay −1). The process's footprint
/// then stays at its peak, which for training is the steady state anyway.
pub fn keep_freed_memory() {
    // SAFETY: mi_option_set only stores an integer in mimalloc's option table; it is
    // thread-safe and valid at any time.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_index_is_the_purge_delay() {
        // mimalloc v3's options.c gives purge_delay a default of 1000 ms (its header's
        // "=10" comment is stale); the neighbours default to 1 (deprecated eager commit
        // delay) and 0 (use_numa_nodes), so 1000 identifies it.
        #[allow(unsafe_code)]
        // SAFETY: reading an option is always valid.
        let value = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(value, 1000);
    }
}
