//! Helper threads that render some of each block's voices beside the audio thread.
//!
//! Started once with the engine. Each block the audio thread lends a helper its share of
//! the voices and a mix buffer (boxes moved through a lock-free SPSC ring, `rtrb`: no
//! allocation, no lock, no `unsafe`) with the corners (an `Arc`, cloned: a count) and
//! the block's controls; the helper renders them, drops its `Arc`, and moves everything
//! back through a second ring. The audio thread renders its own share meanwhile, then
//! waits (spinning, then yielding its core) for the helpers' mixes and adds them to its
//! own. A helper spins a
//! little for the next block, then parks until it is woken (`Thread::unpark`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use rtrb::{Consumer, Producer, RingBuffer};

use super::corners::Corners;
use super::voice::{Controls, Phase, Voice};
use crate::error::{Error, Result};

/// Spins a helper makes waiting for work before it parks.
const SPINS: usize = 20_000;

/// Spins the audio thread makes waiting for a helper before it yields its core.
const WAIT_SPINS: usize = 2_000;

enum ToHelper {
    Voice(usize, Box<Voice>),
    Render {
        corners: Arc<Corners>,
        controls: Controls,
        samples: usize,
        mix: Box<[f32]>,
    },
}

enum FromHelper {
    Voice(usize, Box<Voice>),
    Done(Box<[f32]>),
}

#[derive(Debug)]
struct Helper {
    to: Producer<ToHelper>,
    from: Consumer<FromHelper>,
    thread: Option<JoinHandle<()>>,
    /// Its mix buffer, while at home.
    mix: Option<Box<[f32]>>,
}

impl std::fmt::Debug for ToHelper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToHelper")
    }
}

impl std::fmt::Debug for FromHelper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FromHelper")
    }
}

/// The helper threads.
#[derive(Debug)]
pub(super) struct Pool {
    helpers: Vec<Helper>,
    stop: Arc<AtomicBool>,
}

impl Pool {
    /// `threads` helpers for up to `max_voices` voices of `max_samples` a block.
    pub fn new(threads: usize, max_voices: usize, max_samples: usize) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut helpers = Vec::with_capacity(threads);
        for i in 0..threads {
            let (to, mut inbox) = RingBuffer::<ToHelper>::new(max_voices + 2);
            let (mut outbox, from) = RingBuffer::<FromHelper>::new(max_voices + 2);
            let stop_flag = Arc::clone(&stop);
            let thread = std::thread::Builder::new()
                .name(format!("timbrel-voices-{}", i + 1))
                .spawn(move || helper(&mut inbox, &mut outbox, &stop_flag, max_voices))
                .map_err(|e| Error::Audio(format!("cannot start a voice thread ({e})")))?;
            helpers.push(Helper {
                to,
                from,
                thread: Some(thread),
                mix: Some(vec![0.0; max_samples].into_boxed_slice()),
            });
        }
        Ok(Self { helpers, stop })
    }

    pub fn threads(&self) -> usize {
        self.helpers.len()
    }

    /// Renders the sounding voices of `voices` (all at home) into `mix`, spreading them
    /// over the helpers and this thread; returns how many this thread rendered.
    /// Allocates nothing.
    pub fn render(
        &mut self,
        voices: &mut [Option<Box<Voice>>],
        corners: &Arc<Corners>,
        controls: &Controls,
        mix: &mut [f32],
    ) -> usize {
        let samples = mix.len();
        let share = self.helpers.len() + 1;
        // Lend each helper every `share`-th sounding voice.
        let mut k = 0;
        for (slot, v) in voices.iter_mut().enumerate() {
            if !v.as_ref().is_some_and(|v| v.phase != Phase::Free) {
                continue;
            }
            let to = k % share;
            k += 1;
            if to == 0 {
                continue;
            }
            let helper = &mut self.helpers[to - 1];
            if let Some(voice) = v.take()
                && let Err(rtrb::PushError::Full(ToHelper::Voice(_, voice))) =
                    helper.to.push(ToHelper::Voice(slot, voice))
            {
                // Cannot happen (the ring holds every voice); this thread renders it.
                *v = Some(voice);
            }
        }
        let mut lent = [false; 64];
        for (h, helper) in self.helpers.iter_mut().enumerate() {
            let Some(buffer) = helper.mix.take() else {
                continue;
            };
            let job = ToHelper::Render {
                corners: Arc::clone(corners),
                controls: *controls,
                samples,
                mix: buffer,
            };
            match helper.to.push(job) {
                Ok(()) => {
                    if let Some(h) = lent.get_mut(h) {
                        *h = true;
                    }
                    if let Some(t) = &helper.thread {
                        t.thread().unpark();
                    }
                }
                Err(rtrb::PushError::Full(ToHelper::Render { mix, .. })) => {
                    helper.mix = Some(mix);
                }
                Err(_) => {}
            }
        }
        // This thread's share: what stayed at home.
        let mut own = 0;
        for v in voices.iter_mut().flatten() {
            if v.phase != Phase::Free {
                v.render(corners, controls, mix);
                own += 1;
            }
        }
        // The helpers' voices and mixes back.
        for (h, helper) in self.helpers.iter_mut().enumerate() {
            if !lent.get(h).copied().unwrap_or(false) {
                continue;
            }
            let mut waited = 0usize;
            loop {
                match helper.from.pop() {
                    Ok(FromHelper::Voice(slot, voice)) => {
                        if let Some(v) = voices.get_mut(slot) {
                            *v = Some(voice);
                        }
                    }
                    Ok(FromHelper::Done(buffer)) => {
                        for (o, &x) in mix.iter_mut().zip(buffer.iter()) {
                            *o += x;
                        }
                        helper.mix = Some(buffer);
                        break;
                    }
                    Err(_) => {
                        // A short spin, then give the core away: on a computer with more
                        // threads than cores the helper may be waiting for this one's.
                        waited += 1;
                        if waited < WAIT_SPINS {
                            std::hint::spin_loop();
                        } else {
                            std::thread::yield_now();
                        }
                    }
                }
            }
        }
        own
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for helper in &mut self.helpers {
            if let Some(t) = helper.thread.take() {
                t.thread().unpark();
                let _ = t.join();
            }
        }
    }
}

/// A helper's loop: voices in, a render, voices and the mix out.
fn helper(
    inbox: &mut Consumer<ToHelper>,
    outbox: &mut Producer<FromHelper>,
    stop: &AtomicBool,
    max_voices: usize,
) {
    let mut mine: Vec<(usize, Box<Voice>)> = Vec::with_capacity(max_voices);
    let mut idle = 0;
    loop {
        match inbox.pop() {
            Ok(ToHelper::Voice(slot, voice)) => {
                idle = 0;
                mine.push((slot, voice));
            }
            Ok(ToHelper::Render {
                corners,
                controls,
                samples,
                mut mix,
            }) => {
                idle = 0;
                let n = samples.min(mix.len());
                let mix_now = &mut mix[..n];
                mix_now.fill(0.0);
                for (_, v) in &mut mine {
                    v.render(&corners, &controls, mix_now);
                }
                drop(corners);
                for (slot, voice) in mine.drain(..) {
                    // The ring holds every voice: this cannot fail.
                    let _ = outbox.push(FromHelper::Voice(slot, voice));
                }
                let _ = outbox.push(FromHelper::Done(mix));
            }
            Err(_) => {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                idle += 1;
                if idle < SPINS {
                    std::hint::spin_loop();
                } else {
                    std::thread::park();
                }
            }
        }
    }
}
