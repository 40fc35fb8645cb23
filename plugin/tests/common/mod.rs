//! A small in-process CLAP host (clack-host) for the plugin's tests: it loads the plugin
//! from its own entry (no .so, no file), keeps what the plugin logs, answers its
//! main-thread callback requests, and runs blocks of audio with events.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clack_extensions::latency::PluginLatency;
use clack_extensions::log::{HostLog, HostLogImpl, LogSeverity};
use clack_extensions::state::PluginState;
use clack_host::events::Match;
use clack_host::events::event_types::{MidiEvent, NoteOffEvent, NoteOnEvent, ParamValueEvent};
use clack_host::prelude::*;
use clack_plugin::entry::SinglePluginEntry;
use timbrel_clap::Timbrel;

/// How long a test waits for the loader (model + corners) before giving up: generous for
/// a debug build on a loaded 2-core machine; nothing is asserted about the time.
pub const LOAD_WAIT: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct HostShared {
    logs: Mutex<Vec<(LogSeverity, String)>>,
    callback: AtomicBool,
    restart: AtomicBool,
}

impl SharedHandler<'_> for HostShared {
    fn request_restart(&self) {
        self.restart.store(true, Ordering::SeqCst);
    }
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback.store(true, Ordering::SeqCst);
    }
}

impl HostLogImpl for HostShared {
    fn log(&self, severity: LogSeverity, message: &str) {
        eprintln!("[{severity}] {message}");
        self.logs
            .lock()
            .unwrap()
            .push((severity, message.to_string()));
    }
}

pub struct TestHost;

impl HostHandlers for TestHost {
    type Shared<'a> = HostShared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder.register::<HostLog>();
    }
}

/// One plugin instance and the buffers to drive it.
pub struct Harness {
    pub plugin: PluginInstance<TestHost>,
    processor: Option<StartedPluginAudioProcessor<TestHost>>,
    events: EventBuffer,
    out_events: EventBuffer,
    out: [Vec<f32>; 2],
    ports: AudioPorts,
    pub block: usize,
    pub rate_hz: f64,
    /// Log lines before the last activation ([`Harness::wait_for_log`] reads after it).
    mark: usize,
}

impl Harness {
    /// A fresh instance, inactive.
    pub fn new() -> Self {
        let info = HostInfo::new("timbrel-tests", "timbrel", "", "0").unwrap();
        let entry = PluginEntry::load_from_clack::<SinglePluginEntry<Timbrel>>(c"").unwrap();
        let plugin = PluginInstance::<TestHost>::new(
            |_| HostShared::default(),
            |_| (),
            &entry,
            c"org.timbrel.timbrel",
            &info,
        )
        .unwrap();
        Self {
            plugin,
            processor: None,
            events: EventBuffer::with_capacity(256),
            out_events: EventBuffer::with_capacity(256),
            out: [Vec::new(), Vec::new()],
            ports: AudioPorts::with_capacity(2, 1),
            block: 0,
            rate_hz: 0.0,
            mark: 0,
        }
    }

    /// Activates at `rate_hz` with blocks of `block` frames and starts processing.
    pub fn activate(&mut self, rate_hz: f64, block: usize) {
        let config = PluginAudioConfiguration {
            sample_rate: rate_hz,
            min_frames_count: 1,
            max_frames_count: block as u32,
        };
        self.mark = self.logs().len();
        let stopped = self.plugin.activate(|_, _| (), config).unwrap();
        self.processor = Some(stopped.start_processing().unwrap());
        self.out = [vec![0.0; block], vec![0.0; block]];
        self.block = block;
        self.rate_hz = rate_hz;
        self.callbacks();
    }

    pub fn deactivate(&mut self) {
        if let Some(p) = self.processor.take() {
            self.plugin.deactivate(p.stop_processing());
        }
        self.callbacks();
    }

    /// [`Harness::wait_for_log`] reads what is logged from now on.
    pub fn mark(&mut self) {
        self.mark = self.logs().len();
    }

    /// Answers the plugin's main-thread callback request, if it made one.
    pub fn callbacks(&mut self) {
        let asked = self
            .plugin
            .access_shared_handler(|h| h.callback.swap(false, Ordering::SeqCst));
        if asked {
            self.plugin.call_on_main_thread_callback();
        }
    }

    /// Whether the plugin asked to be deactivated and activated again (and forgets it).
    pub fn restart_asked(&self) -> bool {
        self.plugin
            .access_shared_handler(|h| h.restart.swap(false, Ordering::SeqCst))
    }

    /// Everything logged so far.
    pub fn logs(&self) -> Vec<(LogSeverity, String)> {
        self.plugin
            .access_shared_handler(|h| h.logs.lock().unwrap().clone())
    }

    pub fn logged(&self, needle: &str) -> bool {
        self.logs().iter().any(|(_, m)| m.contains(needle))
    }

    pub fn note_on(&mut self, key: u16, velocity: f64) {
        self.events.push(&NoteOnEvent::new(
            0,
            Pckn::new(0u16, 0u16, key, Match::All),
            velocity,
        ));
    }

    pub fn note_off(&mut self, key: u16) {
        self.events.push(&NoteOffEvent::new(
            0,
            Pckn::new(0u16, 0u16, key, Match::All),
            0.0,
        ));
    }

    pub fn midi(&mut self, data: [u8; 3]) {
        self.events.push(&MidiEvent::new(0, 0, data));
    }

    pub fn param(&mut self, id: u32, value: f64) {
        self.events.push(&ParamValueEvent::new(
            0,
            ClapId::new(id),
            Pckn::match_all(),
            value,
        ));
    }

    /// Runs one block (the pending events at its start); the left channel stays in
    /// `self.left()`. Returns whether the plugin kept the channels equal (mono in stereo).
    pub fn process(&mut self) {
        let processor = self.processor.as_mut().expect("activate first");
        let [left, right] = &mut self.out;
        let mut outputs = self.ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(
                [left.as_mut_slice(), right.as_mut_slice()].into_iter(),
            ),
        }]);
        processor
            .process(
                &InputAudioBuffers::empty(),
                &mut outputs,
                &self.events.as_input(),
                &mut self.out_events.as_output(),
                None,
                None,
            )
            .unwrap();
        self.events.clear();
        self.out_events.clear();
    }

    pub fn left(&self) -> &[f32] {
        &self.out[0]
    }

    pub fn right(&self) -> &[f32] {
        &self.out[1]
    }

    /// `frames` of audio (whole blocks), the events pending going in the first.
    pub fn render(&mut self, frames: usize) -> Vec<f32> {
        let mut audio = Vec::with_capacity(frames + self.block);
        while audio.len() < frames {
            self.process();
            assert_eq!(self.left(), self.right(), "the stereo channels differ");
            audio.extend_from_slice(&self.out[0]);
            self.callbacks();
        }
        audio.truncate(frames);
        audio
    }

    /// Processes silent blocks until the plugin logs one of `needles` after the last
    /// activation (answering its callback requests); returns the message, or `None` after
    /// [`LOAD_WAIT`].
    pub fn wait_for_log(&mut self, needles: &[&str]) -> Option<String> {
        let start = Instant::now();
        while start.elapsed() < LOAD_WAIT {
            self.process();
            assert!(
                self.left().iter().all(|s| *s == 0.0),
                "sound before anything was played"
            );
            self.callbacks();
            if let Some((_, m)) = self
                .logs()
                .into_iter()
                .skip(self.mark)
                .find(|(_, m)| needles.iter().any(|n| m.contains(n)))
            {
                return Some(m);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Waits for the engine; panics with the log if the plugin said it cannot play.
    pub fn wait_ready(&mut self) {
        let said = self.wait_for_log(&["playing at", "silent:"]);
        match said {
            Some(m) if m.contains("playing at") => {}
            other => panic!("not ready: {other:?}; log: {:?}", self.logs()),
        }
    }

    pub fn save_state(&mut self) -> Vec<u8> {
        let handle = self.plugin.plugin_handle();
        let state = handle.get_extension::<PluginState>().unwrap();
        let mut bytes = Vec::new();
        state
            .save(&self.plugin.plugin_handle(), &mut bytes)
            .unwrap();
        bytes
    }

    /// The latency the plugin reports, in frames (0 when it has no latency extension).
    pub fn latency_frames(&mut self) -> u32 {
        let handle = self.plugin.plugin_handle();
        match handle.get_extension::<PluginLatency>() {
            Some(latency) => latency.get(&self.plugin.plugin_handle()),
            None => 0,
        }
    }

    pub fn load_state(&mut self, bytes: &[u8]) -> bool {
        let handle = self.plugin.plugin_handle();
        let state = handle.get_extension::<PluginState>().unwrap();
        let ok = state
            .load(&self.plugin.plugin_handle(), &mut &bytes[..])
            .is_ok();
        self.callbacks();
        ok
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.deactivate();
    }
}

/// The demo instruments written to a temporary folder (so tests leave the user's data
/// folder alone), as a state naming them by path.
pub fn demo_state(dir: &std::path::Path, params: &str) -> Vec<u8> {
    let packs = engine::demo::install(dir).unwrap();
    let corners: Vec<String> = packs
        .iter()
        .map(|p| format!("{{\"path\": {:?}}}", p.display().to_string()))
        .collect();
    format!(
        "{{\"version\": 1, \"corners\": [{}], \"params\": {{{params}}}}}",
        corners.join(", ")
    )
    .into_bytes()
}

/// Root-mean-square level.
pub fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

pub fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0, |m, s| m.max(s.abs()))
}
