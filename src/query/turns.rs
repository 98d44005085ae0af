//! How many queries are computed at once, and what a query gives back when
//! it ends.
//!
//! Owns the turn a running query holds and, when the turn is handed on,
//! returning the memory its operators freed to the operating system. It
//! must not decide when a query ends: that is the stream's or the caller's.

use tokio::sync::OwnedSemaphorePermit;

/// A query's place among those computed at once, held until its stream ends
/// or is dropped.
pub(super) struct Turn {
    _permit: OwnedSemaphorePermit,
}

impl Turn {
    pub(super) fn new(permit: OwnedSemaphorePermit) -> Self {
        Self { _permit: permit }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        give_back_freed_memory();
    }
}

/// The C allocator keeps what a query's operators freed in per-thread
/// arenas, for the next allocation on the same thread. Queries run on
/// whichever threads are free, so those arenas grew with each heavy query
/// until the server held half as much again as its memory pool, with one
/// query at a time (benches/RESULTS.md). Trimming when a query ends hands
/// the free pages back; it runs off the async threads since it walks every
/// arena.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_freed_memory() {
    let trim = || {
        // SAFETY: malloc_trim only returns free pages to the kernel; it
        // touches no memory in use.
        unsafe { libc::malloc_trim(0) };
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(trim)),
        Err(_) => trim(),
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_freed_memory() {}
