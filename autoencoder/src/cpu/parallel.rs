//! Spreading one step over threads: each computes a share of every matrix's columns
//! ([`Part`]) and the threads swap their shares through [`Exchange`] at a spin barrier.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::kernels::{HALF, NR, pad, pad16};
use crate::mulaw::CLASSES;

/// The panels of each matrix one thread of a split step computes (all of them for a
/// step on one thread). Shares are contiguous and differ by at most one panel.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) index: usize,
    /// Gate panels (8 channels each), the same in every layer.
    pub(crate) gate: Range<usize>,
    /// Residual panels of the `[res | skip]` matrix (16 channels each).
    pub(crate) res: Range<usize>,
    /// Skip panels, counted within the skip part; also the skip start's panels, so each
    /// skip channel is summed by one thread from start to end.
    pub(crate) skip: Range<usize>,
    pub(crate) out1: Range<usize>,
    pub(crate) logits: Range<usize>,
}

impl Part {
    pub(crate) fn new(width: usize, skip_width: usize, index: usize, threads: usize) -> Self {
        let share = |n: usize| {
            let r = split(n, threads);
            r.get(index).cloned().unwrap_or(n..n)
        };
        Self {
            index,
            gate: share(width.div_ceil(HALF)),
            res: share(width.div_ceil(NR)),
            skip: share(skip_width.div_ceil(NR)),
            out1: share(skip_width.div_ceil(NR)),
            logits: share(CLASSES / NR),
        }
    }
}

/// What the threads of a split step swap: each writes the columns it computed, waits at
/// the barrier, and reads everyone's. Values travel as `f32` bits in atomics (relaxed;
/// the barrier orders them), so no `unsafe` sharing is needed.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) g: Vec<AtomicU32>,
    pub(crate) l: Vec<AtomicU32>,
    pub(crate) s: Vec<AtomicU32>,
    pub(crate) h: Vec<AtomicU32>,
    pub(crate) logits: Vec<AtomicU32>,
    barrier: SpinBarrier,
    /// Thread 0's decision to end the split after the current step (a cancel, or
    /// [`Exchange::solo`]).
    pub(crate) stop: AtomicBool,
    /// With `stop`: thread 0 goes on alone (the others are not getting their cores);
    /// without: the decode was cancelled.
    pub(crate) solo: AtomicBool,
}

impl Exchange {
    /// The cells of a decoder of `width` residual and `skip_width` skip channels.
    pub(crate) fn new(width: usize, skip_width: usize, voices: usize, threads: usize) -> Self {
        let cells = |n: usize| (0..voices * n).map(|_| AtomicU32::new(0)).collect();
        Self {
            g: cells(width.div_ceil(HALF) * HALF),
            l: cells(pad16(width)),
            s: cells(pad(skip_width)),
            h: cells(pad(skip_width)),
            logits: cells(CLASSES),
            barrier: SpinBarrier::new(threads),
            stop: AtomicBool::new(false),
            solo: AtomicBool::new(false),
        }
    }

    /// Meetings since the last call at which a thread waited past its spinning budget
    /// (~2,000 spins, a few µs): the sign that a partner was not running.
    pub(crate) fn take_slow_meetings(&self) -> u64 {
        self.barrier.slow.swap(0, Ordering::Relaxed)
    }

    /// Publishes columns `owned` of `private` (`[voice][stride]`), waits for every
    /// thread, then copies all threads' columns back into `private`.
    pub(crate) fn share(
        &self,
        shared: &[AtomicU32],
        private: &mut [f32],
        stride: usize,
        owned: Range<usize>,
        voices: usize,
    ) {
        for v in 0..voices {
            let row = v * stride;
            for c in owned.clone() {
                shared[row + c].store(private[row + c].to_bits(), Ordering::Relaxed);
            }
        }
        self.barrier.wait();
        for (p, s) in private[..voices * stride].iter_mut().zip(shared) {
            *p = f32::from_bits(s.load(Ordering::Relaxed));
        }
        // No second barrier: a buffer is written again only after another exchange's
        // barrier (g and l alternate within a step; s, h and logits once per step), which
        // no thread passes before it has read this one.
    }
}

/// A reusable barrier that spins (then yields, after ~50 µs, in case the threads
/// outnumber the cores):
/// the threads of a split step meet ~40 times per sample, far too often to sleep.
#[derive(Debug)]
pub(crate) struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    /// Waits that outlasted the spinning and yielded.
    slow: AtomicU64,
}

impl SpinBarrier {
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            slow: AtomicU64::new(0),
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if spins < 2_000 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                if spins == 2_000 {
                    spins += 1;
                    self.slow.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::yield_now();
            }
        }
    }
}

/// `voices` in at most `threads` contiguous groups of sizes differing by at most one.
pub(crate) fn split(voices: usize, threads: usize) -> Vec<Range<usize>> {
    let n = threads.min(voices).max(1);
    let (base, extra) = (voices / n, voices % n);
    let mut start = 0;
    (0..n)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_cover_the_voices() {
        assert_eq!(split(5, 2), vec![0..3, 3..5]);
        assert_eq!(split(1, 4), vec![0..1]);
        assert_eq!(split(16, 2), vec![0..8, 8..16]);
    }
}
