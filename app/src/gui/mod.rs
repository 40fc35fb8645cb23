//! The desktop app: sources, the XY pad (or a slider), a pitch keyboard, render with
//! progress and cancel, plots, playback and export.
//!
//! Split as the egui demo app is: [`State`] is what persists (serde, eframe storage and
//! session files); [`TimbrelApp`] holds it beside the runtime handles (the worker thread
//! that owns the model, the audio player). Panels are `*_ui` functions that push
//! [`Command`]s, applied after the frame is drawn.

mod app;
mod audio;
mod live;
mod midi;
mod plots;
mod state;
mod worker;

#[cfg(test)]
mod tests;

use std::process::ExitCode;

pub use app::{Options, TimbrelApp};

/// Opens the window and runs until it is closed.
pub fn run(options: Options) -> anyhow::Result<ExitCode> {
    let native = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("Timbrel")
            .with_inner_size([1200.0, 800.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "timbrel",
        native,
        Box::new(move |cc| Ok(Box::new(TimbrelApp::new(cc, options)))),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot open the window ({e}); the command line works without one: timbrel --help"
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
