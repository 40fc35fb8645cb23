//! A global allocator that counts: every allocation, free and reallocation made on each
//! thread, and the largest single request in the whole process. A test binary installs it
//! around the allocator it would otherwise use, e.g.
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: testkit::alloc::Counting<std::alloc::System> =
//!     testkit::alloc::Counting(std::alloc::System);
//! ```
//!
//! and then shows that a piece of code (an audio callback) never calls it, by
//! [`calls_on_this_thread`] before and after, or that nothing asked for more than a bound
//! ([`largest_allocation`]).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    // Const-initialised with no destructor: reading it never allocates.
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn count(size: usize) {
    let _ = CALLS.try_with(|c| c.set(c.get() + 1));
    LARGEST.fetch_max(size, Ordering::Relaxed);
}

/// Allocations, frees and reallocations made on this thread so far.
pub fn calls_on_this_thread() -> u64 {
    CALLS.try_with(Cell::get).unwrap_or(0)
}

/// The largest single allocation (or reallocation's new size) in this process so far, in
/// bytes.
pub fn largest_allocation() -> usize {
    LARGEST.load(Ordering::Relaxed)
}

/// The allocator `A` behind the counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting<A>(pub A);

// SAFETY: every method forwards to `A` with the caller's arguments unchanged, so `A`'s
// guarantees are this allocator's; counting touches only a thread-local integer and an
// atomic one.
#[allow(unsafe_code)]
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as is (see the impl).
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as is.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0);
        // SAFETY: forwarded as is.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded as is.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}
