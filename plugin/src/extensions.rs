//! The CLAP extensions' plumbing: ports, parameters and state.

use std::ffi::CStr;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;

use clack_extensions::audio_ports::{
    AudioPortFlags, AudioPortInfo, AudioPortInfoWriter, AudioPortType, PluginAudioPortsImpl,
};
use clack_extensions::latency::PluginLatencyImpl;
use clack_extensions::note_ports::{
    NoteDialect, NoteDialects, NotePortInfo, NotePortInfoWriter, PluginNotePortsImpl,
};
use clack_extensions::params::{
    ParamDisplayWriter, ParamInfo, ParamInfoFlags, ParamInfoWriter, PluginAudioProcessorParams,
    PluginMainThreadParams,
};
use clack_extensions::render::{PluginRenderImpl, RenderMode};
use clack_extensions::state::PluginStateImpl;
use clack_plugin::events::spaces::CoreEventSpace;
use clack_plugin::prelude::*;
use clack_plugin::stream::{InputStream, OutputStream};

use crate::params::{PARAMS, Spec};
use crate::state::Saved;
use crate::status::Severity;
use crate::{AudioProcessor, MainThread};

/// The largest state we read (a few hundred bytes in practice).
const MAX_STATE_BYTES: u64 = 1 << 20;

impl PluginAudioPortsImpl for MainThread<'_> {
    fn count(&self, is_input: bool) -> u32 {
        if is_input { 0 } else { 1 }
    }

    fn get(&self, index: u32, is_input: bool, writer: &mut AudioPortInfoWriter) {
        if !is_input && index == 0 {
            writer.set(&AudioPortInfo {
                id: ClapId::new(0),
                name: b"main",
                channel_count: 2,
                flags: AudioPortFlags::IS_MAIN,
                port_type: Some(AudioPortType::STEREO),
                in_place_pair: None,
            });
        }
    }
}

impl PluginLatencyImpl for MainThread<'_> {
    /// Host frames from a note to its sound (the resampler's look-ahead and the FIFO),
    /// fixed for an activation: the host compensates it on recorded notes.
    fn get(&self) -> u32 {
        self.shared.latency_frames.load(Ordering::Acquire)
    }
}

impl PluginNotePortsImpl for MainThread<'_> {
    fn count(&self, is_input: bool) -> u32 {
        if is_input { 1 } else { 0 }
    }

    fn get(&self, index: u32, is_input: bool, writer: &mut NotePortInfoWriter) {
        if is_input && index == 0 {
            writer.set(&NotePortInfo {
                id: ClapId::new(0),
                name: b"notes",
                preferred_dialect: Some(NoteDialect::Clap),
                supported_dialects: NoteDialects::CLAP | NoteDialects::MIDI,
            });
        }
    }
}

impl PluginMainThreadParams for MainThread<'_> {
    fn count(&self) -> u32 {
        PARAMS.len() as u32
    }

    fn get_info(&self, param_index: u32, info: &mut ParamInfoWriter) {
        let Some(spec) = PARAMS.get(param_index as usize) else {
            return;
        };
        let mut flags = ParamInfoFlags::IS_AUTOMATABLE;
        if spec.stepped {
            flags |= ParamInfoFlags::IS_STEPPED;
        }
        info.set(&ParamInfo {
            id: ClapId::new(spec.id),
            flags,
            cookie: Default::default(),
            name: spec.name.as_bytes(),
            module: b"",
            min_value: f64::from(spec.min),
            max_value: f64::from(spec.max),
            default_value: f64::from(spec.default),
        });
    }

    fn get_value(&self, param_id: ClapId) -> Option<f64> {
        self.shared.values.get_id(param_id.get()).map(f64::from)
    }

    fn value_to_text(
        &self,
        param_id: ClapId,
        value: f64,
        writer: &mut ParamDisplayWriter,
    ) -> std::fmt::Result {
        let (_, spec) = Spec::of_id(param_id.get()).ok_or(std::fmt::Error)?;
        spec.display(value as f32, writer)
    }

    fn text_to_value(&self, param_id: ClapId, text: &CStr) -> Option<f64> {
        let (_, spec) = Spec::of_id(param_id.get())?;
        spec.parse(text.to_str().ok()?).map(f64::from)
    }

    fn flush(&self, input: &InputEvents, _output: &mut OutputEvents) {
        for event in input {
            if let Some(CoreEventSpace::ParamValue(e)) = event.as_core_event()
                && let Some(id) = e.param_id()
            {
                self.shared.values.set_id(id.get(), e.value());
            }
        }
        self.sync_corners();
    }
}

impl PluginAudioProcessorParams for AudioProcessor<'_> {
    fn flush(&mut self, input: &InputEvents, _output: &mut OutputEvents) {
        for event in input {
            self.handle(event);
        }
    }
}

impl PluginRenderImpl for MainThread<'_> {
    fn has_hard_realtime_requirement(&self) -> bool {
        false
    }

    fn set(&self, mode: RenderMode) -> Result<(), PluginError> {
        self.shared
            .offline
            .store(mode == RenderMode::Offline, Ordering::Release);
        Ok(())
    }
}

impl PluginStateImpl for MainThread<'_> {
    fn save(&self, output: &mut OutputStream) -> Result<(), PluginError> {
        let saved = Saved::capture(
            &self.corners(),
            self.model.borrow().clone(),
            &self.shared.values,
        );
        output.write_all(&saved.to_json())?;
        Ok(())
    }

    fn load(&self, input: &mut InputStream) -> Result<(), PluginError> {
        let mut bytes = Vec::new();
        input.take(MAX_STATE_BYTES).read_to_end(&mut bytes)?;
        let saved = match Saved::from_json(&bytes) {
            Ok(saved) => saved,
            Err(e) => {
                self.shared.status.report(Severity::Error, e.to_string());
                self.log_reports();
                return Err(PluginError::Message("the saved state cannot be read"));
            }
        };
        saved.apply_params(&self.shared.values);
        if *self.model.borrow() != saved.model {
            // A running engine cannot change its model; a new activation builds one.
            self.host.shared().request_restart();
        }
        self.set_corners(&saved.corners, saved.model);
        // A project loaded again is read again (its files may be back).
        *self.sent.borrow_mut() = None;
        self.start_corners();
        self.log_reports();
        Ok(())
    }
}
