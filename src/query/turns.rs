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
    /// Above this much resident memory, the memory pool's size, freed
    /// memory is handed back when the turn ends.
    resident_limit: usize,
}

impl Turn {
    pub(super) fn new(permit: OwnedSemaphorePermit, resident_limit: usize) -> Self {
        Self {
            _permit: permit,
            resident_limit,
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        give_back_freed_memory(self.resident_limit);
    }
}

/// The C allocator keeps what a query's operators freed in per-thread
/// arenas, for the next allocation on the same thread. Queries run on
/// whichever threads are free, so those arenas grew with each heavy query
/// until the server held half as much again as its memory pool, with one
/// query at a time (benches/RESULTS.md). Trimming when a query ends hands
/// the free pages back. It runs only when the process holds more than
/// `resident_limit`: the next query must fault the pages in again, which
/// made the indicator suite a tenth slower when every query trimmed. It
/// runs off the async threads, since it walks every arena.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_freed_memory(resident_limit: usize) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            drop(runtime.spawn_blocking(move || give_back_freed_memory_now(resident_limit)))
        }
        Err(_) => give_back_freed_memory_now(resident_limit),
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_freed_memory_now(resident_limit: usize) {
    if resident_bytes().is_some_and(|resident| resident <= resident_limit) {
        return;
    }
    // SAFETY: malloc_trim only returns free pages to the kernel; it
    // touches no memory in use.
    unsafe { libc::malloc_trim(0) };
}

/// While queries run and the process holds more than `resident_limit`,
/// hands freed memory back every quarter second. Two heavy queries at
/// once free and allocate far more than they hold, and what one frees
/// stayed in its threads' arenas while the other ran, so the server's peak
/// went from 1.0 to 1.7 GiB between runs of the same eight queries under
/// a 1 GiB pool (benches/RESULTS.md). Ends when `turns` is dropped.
pub(super) fn watch_resident_memory(
    turns: std::sync::Weak<tokio::sync::Semaphore>,
    total: usize,
    resident_limit: usize,
) {
    // Where freed memory cannot be handed back, there is nothing to watch.
    if cfg!(not(all(target_os = "linux", target_env = "gnu"))) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_millis(250));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(turns) = turns.upgrade() else {
                return;
            };
            let running = turns.available_permits() < total;
            drop(turns);
            if running {
                let _ =
                    tokio::task::spawn_blocking(move || give_back_freed_memory_now(resident_limit))
                        .await;
            }
        }
    });
}

/// The process's resident memory, from the second field of
/// `/proc/self/statm` (in pages).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system setting.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * usize::try_from(page_size).ok()?)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_freed_memory(_resident_limit: usize) {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_freed_memory_now(_resident_limit: usize) {}

/// A query counted among those waiting for a turn while this is held, so
/// that a query that gets one knows whether others are about to run.
pub(super) struct Waiting(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Waiting {
    pub(super) fn count(waiting: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Self {
        waiting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(waiting.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
