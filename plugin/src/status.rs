//! What the loader thread tells the other two: whether the voice engine may play, and the
//! messages for the host's log. The loader cannot reach the host (its handle lives as long
//! as a call from the host), so it queues messages here; the main thread logs them at its
//! next call, and the audio thread, seeing [`Status::take_news`], asks the host for that
//! call (`request_callback`, which is wait-free for the host to answer later).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// How much a message matters (the host's log severities we use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub severity: Severity,
    pub message: String,
}

/// Shared by the loader (writes), the main thread (drains the queue) and the audio thread
/// (reads the flags only: it never takes the lock).
#[derive(Debug, Default)]
pub struct Status {
    queue: Mutex<Vec<Report>>,
    news: AtomicBool,
    playable: AtomicBool,
}

impl Status {
    /// Queues a message for the host's log.
    pub fn report(&self, severity: Severity, message: impl Into<String>) {
        let report = Report {
            severity,
            message: message.into(),
        };
        // A poisoned queue only means a thread panicked while pushing; the Vec is whole.
        match self.queue.lock() {
            Ok(mut q) => q.push(report),
            Err(poisoned) => poisoned.into_inner().push(report),
        }
        self.news.store(true, Ordering::Release);
    }

    /// The queued messages, oldest first (main thread).
    pub fn drain(&self) -> Vec<Report> {
        match self.queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    /// Whether messages arrived since the last call (audio thread: lock-free).
    pub fn take_news(&self) -> bool {
        self.news.swap(false, Ordering::AcqRel)
    }

    /// Whether the voice engine has a model and corners it can play (false: silence).
    pub fn playable(&self) -> bool {
        self.playable.load(Ordering::Acquire)
    }

    pub fn set_playable(&self, playable: bool) {
        self.playable.store(playable, Ordering::Release);
    }
}
