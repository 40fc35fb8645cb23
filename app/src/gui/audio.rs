//! Playback through cpal. The audio callback is a pure consumer: buffers are made (and
//! resampled to the device rate) on the GUI thread and handed over through a lock-free
//! ring (rtrb); the callback sends finished buffers back through a second ring, so it
//! never allocates, frees, locks, logs or touches a file.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

/// What the GUI sends the callback.
#[derive(Debug)]
enum Command {
    Play(Box<[f32]>),
    Stop,
}

/// Read by the GUI, written by the callback (atomics only).
#[derive(Debug, Default)]
struct Shared {
    playing: AtomicBool,
    /// Output latency in 1/100 ms, from the callback's timestamps.
    latency_centi_ms: AtomicU32,
}

/// The output device, or why there is none.
pub struct Player {
    stream: Option<cpal::Stream>,
    commands: Option<rtrb::Producer<Command>>,
    returned: Option<rtrb::Consumer<Box<[f32]>>>,
    shared: Arc<Shared>,
    pub rate_hz: u32,
    pub device: String,
    pub error: Option<String>,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("device", &self.device)
            .field("rate_hz", &self.rate_hz)
            .field("error", &self.error)
            .finish()
    }
}

impl Player {
    /// No output at all (tests, or when asked).
    pub fn none(reason: &str) -> Self {
        Self {
            stream: None,
            commands: None,
            returned: None,
            shared: Arc::new(Shared::default()),
            rate_hz: 16_000,
            device: String::new(),
            error: Some(reason.to_string()),
        }
    }

    /// The default output device; without one the app runs on and says so.
    pub fn open() -> Self {
        match Self::try_open() {
            Ok(player) => player,
            Err(reason) => Self::none(&format!("no audio output ({reason})")),
        }
    }

    fn try_open() -> Result<Self, String> {
        let host = cpal::default_host();
        let device = host
            .default_output_device()
            .ok_or_else(|| "no output device".to_string())?;
        let name = device
            .description()
            .map(|d| d.name().to_string())
            .unwrap_or_else(|_| "default".into());
        let supported = device.default_output_config().map_err(|e| e.to_string())?;
        let config = supported.config();
        let channels = usize::from(config.channels);
        let (commands, mut command_rx) = rtrb::RingBuffer::<Command>::new(16);
        let (mut returned_tx, returned) = rtrb::RingBuffer::<Box<[f32]>>::new(32);
        let shared = Arc::new(Shared::default());
        let cb_shared = Arc::clone(&shared);
        let mut current: Option<Box<[f32]>> = None;
        let mut position = 0usize;
        let callback = move |out: &mut [f32], info: &cpal::OutputCallbackInfo| {
            // Take a command only when the buffer it replaces can be handed back.
            while returned_tx.slots() > 0 {
                let Ok(command) = command_rx.pop() else { break };
                let new = match command {
                    Command::Play(buffer) => Some(buffer),
                    Command::Stop => None,
                };
                if let Some(old) = std::mem::replace(&mut current, new) {
                    let _ = returned_tx.push(old);
                }
                position = 0;
            }
            for frame in out.chunks_exact_mut(channels) {
                let sample = match &current {
                    Some(buffer) if position < buffer.len() => {
                        position += 1;
                        buffer[position - 1]
                    }
                    _ => 0.0,
                };
                frame.fill(sample);
            }
            let done = current.as_ref().is_none_or(|b| position >= b.len());
            cb_shared.playing.store(!done, Ordering::Relaxed);
            let ts = info.timestamp();
            let latency = ts.playback.duration_since(ts.callback);
            cb_shared
                .latency_centi_ms
                .store((latency.as_secs_f64() * 1e5) as u32, Ordering::Relaxed);
        };
        let stream = device
            .build_output_stream::<f32, _, _>(
                config,
                callback,
                |_| {
                    // Stream errors (a device unplugged) surface as silence; the status
                    // line keeps showing the device.
                },
                None,
            )
            .map_err(|e| e.to_string())?;
        stream.play().map_err(|e| e.to_string())?;
        Ok(Self {
            stream: Some(stream),
            commands: Some(commands),
            returned: Some(returned),
            shared,
            rate_hz: config.sample_rate,
            device: name,
            error: None,
        })
    }

    pub fn available(&self) -> bool {
        self.stream.is_some()
    }

    /// Plays 16 kHz mono `audio` (resampled here, on the calling thread, to the device).
    pub fn play(&mut self, audio: &[f32]) {
        self.collect();
        let Some(commands) = &mut self.commands else {
            return;
        };
        let buffer = if self.rate_hz == 16_000 {
            audio.to_vec()
        } else {
            engine::audio::resample(audio, 16_000, self.rate_hz).unwrap_or_default()
        };
        let _ = commands.push(Command::Play(buffer.into_boxed_slice()));
    }

    pub fn stop(&mut self) {
        if let Some(commands) = &mut self.commands {
            let _ = commands.push(Command::Stop);
        }
    }

    pub fn playing(&self) -> bool {
        self.shared.playing.load(Ordering::Relaxed)
    }

    pub fn latency_ms(&self) -> f32 {
        self.shared.latency_centi_ms.load(Ordering::Relaxed) as f32 / 100.0
    }

    /// Frees the buffers the callback is done with (here, not in the callback).
    pub fn collect(&mut self) {
        if let Some(returned) = &mut self.returned {
            while returned.pop().is_ok() {}
        }
    }

    /// One line for the status bar.
    pub fn describe(&self) -> String {
        match &self.error {
            Some(e) => e.clone(),
            None => format!(
                "{} at {} Hz, latency {:.1} ms",
                self.device,
                self.rate_hz,
                self.latency_ms()
            ),
        }
    }
}
