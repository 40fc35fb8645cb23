//! Playback through cpal. The audio callback is a pure consumer: buffers are made (and
//! resampled to the device rate) on the GUI thread and handed over through a lock-free
//! ring (rtrb); the callback sends finished buffers back through a second ring, so it
//! never allocates, frees, locks, logs or touches a file. Keys played live are added by
//! the live engine the callback owns (`live.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use engine::audio::SAMPLE_RATE_HZ;
use engine::live::LiveEngine;

use super::live::{self, LiveCommand, LiveInput, LiveStats, LiveVoices, SCRATCH_FRAMES};

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

/// The audio callback's side: the buffer playing and the rings to the GUI thread.
struct Renderer {
    commands: rtrb::Consumer<Command>,
    returned: rtrb::Producer<Box<[f32]>>,
    current: Option<Box<[f32]>>,
    position: usize,
    channels: usize,
    /// Frames of the fade-out a stop makes (10 ms), and how many are left of one.
    fade_frames: usize,
    fading: Option<usize>,
    shared: Arc<Shared>,
    /// The keys played live, added to the buffer playing.
    live: LiveVoices,
    /// The live engine's mono output for one piece of a device buffer, `[SCRATCH_FRAMES]`.
    mono: Vec<f32>,
}

type GuiSide = (
    rtrb::Producer<Command>,
    rtrb::Consumer<Box<[f32]>>,
    Arc<Shared>,
    LiveInput,
    Renderer,
);

impl Renderer {
    /// The callback's state and the GUI's ends of its rings, for `channels` interleaved
    /// output channels at `rate_hz`.
    fn new(channels: usize, rate_hz: u32) -> GuiSide {
        let (commands, command_rx) = rtrb::RingBuffer::<Command>::new(16);
        let (returned_tx, returned) = rtrb::RingBuffer::<Box<[f32]>>::new(32);
        let shared = Arc::new(Shared::default());
        let (live_input, live) = live::channel();
        let renderer = Self {
            commands: command_rx,
            returned: returned_tx,
            current: None,
            position: 0,
            channels: channels.max(1),
            fade_frames: (rate_hz as usize / 100).max(1),
            fading: None,
            shared: Arc::clone(&shared),
            live,
            mono: vec![0.0; SCRATCH_FRAMES],
        };
        (commands, returned, shared, live_input, renderer)
    }

    fn sounding(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|b| self.position < b.len())
    }

    /// Gives the current buffer back to the GUI thread to be freed there; with the
    /// return ring full it stays, silent, until a later call.
    fn hand_back(&mut self) {
        self.fading = None;
        if let Some(old) = self.current.take()
            && let Err(rtrb::PushError::Full(old)) = self.returned.push(old)
        {
            self.position = old.len();
            self.current = Some(old);
        }
    }

    /// Fills one device buffer: takes the GUI's commands, copies the current buffer (the
    /// same sample on every channel), silence after its end; a stop fades out over 10 ms
    /// (no click); the live engine's keys are added on top. No allocation, no free, no
    /// lock: a buffer done with goes back to the GUI thread through the return ring.
    fn fill(&mut self, out: &mut [f32]) {
        // Take a command only when a buffer it replaces can be handed back.
        while self.returned.slots() > 0 {
            let Ok(command) = self.commands.pop() else {
                break;
            };
            match command {
                Command::Play(buffer) => {
                    self.hand_back();
                    self.current = Some(buffer);
                    self.position = 0;
                }
                Command::Stop if self.sounding() => self.fading = Some(self.fade_frames),
                Command::Stop => self.hand_back(),
            }
        }
        // Taken out (no allocation: an empty Vec) so the loop may call `hand_back`.
        let mut mono = std::mem::take(&mut self.mono);
        for piece in out.chunks_mut(self.channels * SCRATCH_FRAMES) {
            let live = &mut mono[..piece.len() / self.channels];
            live.fill(0.0);
            self.live.add_to(live);
            for (frame, &live) in piece.chunks_exact_mut(self.channels).zip(live.iter()) {
                let sample = self.next_sample();
                frame.fill(sample + live);
            }
        }
        self.mono = mono;
        self.shared
            .playing
            .store(self.sounding(), Ordering::Relaxed);
    }

    /// The buffer playing's next sample (0 after its end), faded when stopping.
    fn next_sample(&mut self) -> f32 {
        {
            let mut sample = match &self.current {
                Some(buffer) if self.position < buffer.len() => {
                    self.position += 1;
                    buffer[self.position - 1]
                }
                _ => 0.0,
            };
            if let Some(left) = self.fading {
                sample *= left as f32 / self.fade_frames as f32;
                if left > 1 {
                    self.fading = Some(left - 1);
                } else {
                    self.hand_back();
                }
            }
            sample
        }
    }
}

/// The output device, or why there is none.
pub struct Player {
    stream: Option<cpal::Stream>,
    commands: Option<rtrb::Producer<Command>>,
    returned: Option<rtrb::Consumer<Box<[f32]>>>,
    shared: Arc<Shared>,
    live: LiveInput,
    /// With no stream, the callback's live side nobody runs (its ring shows what was sent).
    #[cfg_attr(not(test), allow(dead_code))]
    parked: Option<LiveVoices>,
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
        let (live, parked) = live::channel();
        Self {
            stream: None,
            commands: None,
            returned: None,
            shared: Arc::new(Shared::default()),
            live,
            parked: Some(parked),
            rate_hz: SAMPLE_RATE_HZ,
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
        let (commands, returned, shared, live, mut renderer) =
            Renderer::new(channels, config.sample_rate);
        let callback = move |out: &mut [f32], info: &cpal::OutputCallbackInfo| {
            renderer.fill(out);
            let ts = info.timestamp();
            let latency = ts.playback.duration_since(ts.callback);
            renderer
                .shared
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
            live,
            parked: None,
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
        let buffer = if self.rate_hz == SAMPLE_RATE_HZ {
            audio.to_vec()
        } else {
            engine::audio::resample(audio, SAMPLE_RATE_HZ, self.rate_hz).unwrap_or_default()
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

    /// Frees the buffers (and a live engine) the callback is done with (here, not in the
    /// callback).
    pub fn collect(&mut self) {
        if let Some(returned) = &mut self.returned {
            while returned.pop().is_ok() {}
        }
        self.live.collect();
    }

    /// Sends the live engine `command`; false when its ring is full (dropped).
    pub fn live(&mut self, command: LiveCommand) -> bool {
        self.live.send(command)
    }

    /// Hands the callback a live engine (it replaces any there).
    pub fn install_live(&mut self, engine: Box<LiveEngine>) -> Result<(), Box<LiveEngine>> {
        self.live.install(engine)
    }

    /// What the callback reports of the live engine.
    pub fn live_stats(&self) -> &LiveStats {
        &self.live.stats
    }

    /// The live commands sent with no stream to take them (tests), oldest first.
    #[cfg(test)]
    pub fn take_live_commands(&mut self) -> Vec<LiveCommand> {
        self.parked
            .as_mut()
            .map(LiveVoices::drain_commands)
            .unwrap_or_default()
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

#[cfg(test)]
#[path = "live_tests.rs"]
mod live_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::alloc::calls_on_this_thread;

    #[test]
    fn the_callback_plays_replaces_and_stops_without_allocating() {
        // 1.6 kHz: a stop fades out over 16 frames.
        let (mut commands, mut returned, shared, _live, mut renderer) = Renderer::new(2, 1600);
        let mut out = vec![1f32; 64];
        let (mut after_first, mut after_end) = (vec![0f32; 64], vec![0f32; 64]);
        let first: Box<[f32]> = (0..40).map(|i| i as f32).collect();
        let second: Box<[f32]> = vec![-0.5; 100].into_boxed_slice();
        commands.push(Command::Play(first)).unwrap();

        // Everything the callback does, counted on this thread: any allocation, free or
        // reallocation by the allocator shows up here.
        let before = calls_on_this_thread();
        renderer.fill(&mut out); // 32 frames of the first buffer
        after_first.copy_from_slice(&out);
        let playing_mid = shared.playing.load(Ordering::Relaxed);
        renderer.fill(&mut out); // 8 more, then silence
        after_end.copy_from_slice(&out);
        let playing_end = shared.playing.load(Ordering::Relaxed);
        assert_eq!(
            calls_on_this_thread() - before,
            0,
            "the callback used the allocator"
        );

        assert_eq!(&after_first[..4], &[0.0, 0.0, 1.0, 1.0]);
        assert_eq!(after_first[62..], [31.0, 31.0]);
        assert_eq!(after_end[14..18], [39.0, 39.0, 0.0, 0.0]);
        assert!(playing_mid && !playing_end);

        // A new buffer replaces the old one, which comes back to this side to be freed;
        // a stop fades the new one out over 16 frames, then it comes back too.
        commands.push(Command::Play(second)).unwrap();
        renderer.fill(&mut out[..8]); // 4 frames of the second
        commands.push(Command::Stop).unwrap();
        let before = calls_on_this_thread();
        renderer.fill(&mut out);
        assert_eq!(calls_on_this_thread() - before, 0);
        let left: Vec<f32> = out.iter().step_by(2).copied().collect();
        assert_eq!(left[0], -0.5, "the fade starts at full level");
        assert!(
            left[..16].windows(2).all(|w| w[1].abs() < w[0].abs()),
            "{left:?}"
        );
        assert!(
            left[16..].iter().all(|&x| x == 0.0),
            "silent after the fade: {left:?}"
        );
        assert!(!shared.playing.load(Ordering::Relaxed));
        let mut back = 0;
        while returned.pop().is_ok() {
            back += 1;
        }
        assert_eq!(back, 2, "both buffers handed back");
    }
}
