//! `timbrel bench live`: how many voices the live engine plays in real time.
//!
//! The embedded student with the demo instruments as its corners (encoded once, not
//! timed): for 1, 2, … voices, every voice a held note (the sustain looping), the engine
//! is run for `--seconds` of output in blocks of `--block` at `--rate`, each block timed.
//! A count plays in real time when its audio took no longer than its duration to make
//! (`max_realtime_voices=`, wall clock: what this computer did, other programs included);
//! `max_cpu_realtime_voices=` counts against the CPU time the process got instead (what
//! it would do with a core per thread to itself, read from `/proc`). The search stops
//! at the first count that makes neither. The CPU guard is off (it would stop voices
//! rather than be late: what is measured here is what they cost).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use engine::live::{Corners, LiveConfig, LiveEngine};
use engine::synth::{DecoderKind, Engine, ModelSource};

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    /// The most voices to try.
    #[arg(long, default_value_t = 16)]
    pub voices: usize,
    /// Frames per block at the output rate.
    #[arg(long, default_value_t = 256)]
    pub block: usize,
    /// Helper threads rendering voices beside the audio thread.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Seconds of audio played per voice count.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f32,
    /// Output rate in Hz.
    #[arg(long, default_value_t = 48_000)]
    pub rate: u32,
    /// Voices play the flows alone, without the student's measured envelope (its output
    /// stage, on by default).
    #[arg(long)]
    pub no_envelope: bool,
}

/// One voice count's run: real-time factor (audio seconds per wall second), the same
/// against the CPU time this process got (what an unloaded core would do), and the 99th
/// percentile block time.
struct Run {
    realtime: f64,
    cpu_realtime: Option<f64>,
    p99_ms: f64,
    max_ms: f64,
}

/// CPU time this process's threads have had, from `/proc/self/task/*/schedstat` (Linux;
/// `None` elsewhere).
fn cpu_secs() -> Option<f64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 * 1e-9)
}

fn play(live: &mut LiveEngine, voices: usize, args: &LiveArgs) -> Run {
    for v in 0..voices {
        // Keys spread over two octaves from A2.
        live.note_on(45 + (v * 5 % 24) as u8, 0.8);
    }
    let mut out = vec![0f32; args.block];
    let blocks = ((args.seconds * args.rate as f32) as usize)
        .div_ceil(args.block)
        .max(1);
    // One block untimed: the first refill of the FIFO.
    live.process(&mut out);
    let mut times = Vec::with_capacity(blocks);
    let cpu_started = cpu_secs();
    let started = Instant::now();
    for _ in 0..blocks {
        let t = Instant::now();
        live.process(&mut out);
        times.push(t.elapsed().as_secs_f64());
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_secs().zip(cpu_started).map(|(b, a)| b - a);
    times.sort_by(f64::total_cmp);
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    let audio = (blocks * args.block) as f64 / f64::from(args.rate);
    Run {
        realtime: audio / wall,
        // Each thread with a core of its own: the process's CPU time shared over them.
        cpu_realtime: cpu
            .filter(|&c| c > 0.0)
            .map(|c| audio * (1 + args.threads) as f64 / c),
        p99_ms: p99 * 1e3,
        max_ms: times.last().copied().unwrap_or(0.0) * 1e3,
    }
}

/// Prints one line now (the runs take seconds each).
fn say(line: String) -> anyhow::Result<()> {
    let mut out = Output::default();
    out.line(line);
    out.flush()
}

pub fn run(args: &LiveArgs) -> anyhow::Result<ExitCode> {
    let engine = Engine::load(
        &ModelSource::Default,
        Some(DecoderKind::Parallel),
        &candle_core::Device::Cpu, // host: the live engine streams on the CPU (StudentStream)
    )?;
    let model = engine
        .student_model()
        .ok_or_else(|| anyhow::anyhow!("the default model has no student"))?;
    // Where the GUI installs them too (files already there are left alone).
    let data = engine::demo::data_dir().unwrap_or_else(std::env::temp_dir);
    let packs = engine::demo::install(&data)?;
    let paths: Vec<&Path> = packs.iter().map(|p| p.as_path()).collect();
    let corners = Corners::encode(&engine, &paths)?;
    say(format!(
        "model={} corners=demo block={} rate={} threads={} seconds={}",
        engine.name(),
        args.block,
        args.rate,
        args.threads,
        args.seconds
    ))?;
    let mut best: Option<(usize, Run)> = None;
    let mut cpu_best = 0;
    let mut latency_ms = 0.0;
    for voices in 1..=args.voices.max(1) {
        let cfg = LiveConfig {
            output_rate_hz: args.rate,
            max_block_frames: args.block,
            max_voices: voices,
            helper_threads: args.threads,
            envelope: !args.no_envelope,
        };
        let mut live = LiveEngine::new(Arc::clone(&model), corners.clone(), cfg)?;
        live.set_cpu_guard(false);
        live.set_xy(0.5, 0.5);
        latency_ms = (args.block as f64 / f64::from(args.rate) + live.latency_secs()) * 1e3;
        let run = play(&mut live, voices, args);
        let cpu = run
            .cpu_realtime
            .map_or(String::new(), |c| format!(" cpu_realtime_factor={c:.2}"));
        say(format!(
            "voices={voices} realtime_factor={:.2}{cpu} block_ms_p99={:.2} block_ms_max={:.2}",
            run.realtime, run.p99_ms, run.max_ms
        ))?;
        if run.cpu_realtime.is_some_and(|c| c >= 1.0) {
            cpu_best = voices;
        }
        if run.realtime < 1.0 && run.cpu_realtime.is_none_or(|c| c < 1.0) {
            break;
        }
        if run.realtime >= 1.0 {
            best = Some((voices, run));
        }
    }
    let mut out = Output::default();
    match &best {
        Some((voices, run)) => {
            out.line(format!("max_realtime_voices={voices}"));
            out.line(format!("block_ms_p99={:.2}", run.p99_ms));
        }
        None => {
            out.line("max_realtime_voices=0");
        }
    }
    // What the voices would do with a core per thread (the CPU time they got).
    out.line(format!("max_cpu_realtime_voices={cpu_best}"));
    out.line(format!(
        "block_ms={:.2}",
        args.block as f64 / f64::from(args.rate) * 1e3
    ));
    out.line(format!("latency_ms={latency_ms:.2}"));
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
