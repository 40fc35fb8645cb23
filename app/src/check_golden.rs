//! `timbrel check-golden DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use engine::golden::{self, TOLERANCE};

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Fixture directory made with Magenta's code (e.g. ../shared/golden/magenta-tiny).
    pub dir: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let report = golden::check(&args.dir).context("check-golden")?;
    let c = &report.config;
    let mut out = Output::default();
    out.line(format!(
        "fixture {}: batch {}, length {}, decoder {}x{} width {} skip {}, encoder {}x{} width {} bottleneck {} hop {}",
        args.dir.display(),
        report.batch,
        report.length,
        c.num_layers,
        c.filter_length,
        c.width,
        c.skip_width,
        c.ae_num_layers,
        c.ae_filter_length,
        c.ae_width,
        c.ae_bottleneck_width,
        c.ae_hop_length,
    ));
    for d in &report.deviations {
        out.line(format!(
            "{} max_abs_err={:.3e} limit={:.3e} {}",
            d.name,
            d.max_abs_error,
            TOLERANCE * d.scale,
            if d.passes() { "ok" } else { "FAIL" }
        ));
    }
    let passes = report.passes();
    out.line(if passes {
        "parity: ok (limit 1e-4, scaled by max(1, max|reference|) for encoding, logits and loss)"
    } else {
        "parity: FAIL"
    });
    out.flush()?;
    Ok(if passes {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
