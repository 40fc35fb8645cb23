//! `timbrel bench ...`: speed, measured (never asserted in tests).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::anyhow;
use autoencoder::Config;
use autoencoder::WaveNetAutoencoder;
use autoencoder::optim::{Optimizer, OptimizerConfig};
use autoencoder::wavenet::weights::{self, BiasInit};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::output::Output;

mod decode;
pub use decode::DecodeArgs;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Training throughput on random weights and audio-like input, the fused step against
    /// candle's autograd, each in a child process: prints `samples_per_s=` and
    /// `peak_rss_mb=` (the fused step's), `reference_samples_per_s=` and `speedup=`.
    Train(TrainArgs),
    /// One dilated causal convolution (filter 3) of the small preset's size, forward and
    /// backward: ours (a matmul per tap on strided views) against candle's conv1d.
    Conv(ConvArgs),
    /// Autoregressive decoding on random weights: prints `samples_per_s=` (aggregate over
    /// the batch) and `realtime_factor=` (per voice, against 16 kHz).
    Decode(DecodeArgs),
    /// The live engine (the embedded student, the demo instruments as corners): prints
    /// `max_realtime_voices=`, `block_ms_p99=` and `latency_ms=` (block + look-ahead).
    Live(crate::bench_live::LiveArgs),
}

#[derive(Debug, clap::Args)]
pub struct ConvArgs {
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long, default_value_t = 6144)]
    pub crop: usize,
    #[arg(long, default_value_t = 64)]
    pub width: usize,
    #[arg(long, default_value_t = 4)]
    pub dilation: usize,
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
}

#[derive(Clone, Debug, clap::Args)]
pub struct TrainArgs {
    #[arg(long, default_value = "small-pitched")]
    pub preset: String,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long, default_value_t = 6144)]
    pub crop: usize,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Time one path in this process (fused or reference) instead of both, each in a
    /// child process of its own so that its peak memory is its own.
    #[arg(long, value_enum)]
    pub path: Option<TrainPath>,
}

/// A training step's implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TrainPath {
    /// The hand-written step (`autoencoder::wavenet::fused`), what training uses on a CPU.
    Fused,
    /// candle's autograd through the model, the reference.
    Reference,
}

pub fn run(command: &Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Train(args) => train(args),
        Command::Conv(args) => conv(args),
        Command::Decode(args) => decode::decode(args),
        Command::Live(args) => crate::bench_live::run(args),
    }
}

/// Mean seconds of `f` over `repeats` runs after one warm-up.
fn time(repeats: usize, mut f: impl FnMut() -> candle_core::Result<()>) -> anyhow::Result<f64> {
    f()?;
    let started = Instant::now();
    for _ in 0..repeats {
        f()?;
    }
    Ok(started.elapsed().as_secs_f64() / repeats.max(1) as f64)
}

fn conv(args: &ConvArgs) -> anyhow::Result<ExitCode> {
    use autoencoder::nn::{Conv1d, Conv1dConfig, Padding};
    use candle_core::{Device, Module, Var};
    let device = Device::Cpu; // host: `bench conv` times the CPU's convolutions
    let (b, t, c, d) = (args.batch, args.crop, args.width, args.dilation);
    let varmap = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let cfg = Conv1dConfig {
        filter_length: 3,
        dilation: d,
        padding: Padding::Causal,
    };
    let ours = Conv1d::new(&vb, "c", c, 2 * c, cfg)?;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, t, c), &device)?)?;
    // candle's conv1d works on [batch, channels, time] with a [out, in, k] kernel.
    let kernel = Var::from_tensor(&Tensor::randn(0f32, 0.1, (2 * c, c, 3), &device)?)?;
    let xt = Var::from_tensor(&x.as_tensor().transpose(1, 2)?.contiguous()?)?;
    let theirs = |input: &Tensor| -> candle_core::Result<Tensor> {
        // Causal: pad (k − 1)·d on the left, none on the right.
        input
            .pad_with_zeros(2, 2 * d, 0)?
            .conv1d(kernel.as_tensor(), 0, 1, d, 1)
    };
    let r = args.repeats;
    let ours_fwd = time(r, || ours.forward(x.as_tensor()).map(|_| ()))?;
    let ours_both = time(r, || {
        ours.forward(x.as_tensor())?
            .sum_all()?
            .backward()
            .map(|_| ())
    })?;
    let theirs_fwd = time(r, || theirs(xt.as_tensor()).map(|_| ()))?;
    let theirs_both = time(r, || {
        theirs(xt.as_tensor())?.sum_all()?.backward().map(|_| ())
    })?;
    let mut out = Output::default();
    out.line(format!(
        "batch={b} time={t} in={c} out={} dilation={d}",
        2 * c
    ));
    out.line(format!("ours_forward_ms={:.1}", ours_fwd * 1e3));
    out.line(format!(
        "ours_backward_ms={:.1}",
        (ours_both - ours_fwd) * 1e3
    ));
    out.line(format!("candle_conv1d_forward_ms={:.1}", theirs_fwd * 1e3));
    out.line(format!(
        "candle_conv1d_backward_ms={:.1}",
        (theirs_both - theirs_fwd) * 1e3
    ));
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn train(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let Some(path) = args.path else {
        return train_both(args);
    };
    let device = engine::device::by_name(&args.device).map_err(|e| anyhow!(e))?;
    if path == TrainPath::Fused && !device.is_cpu() {
        anyhow::bail!("the fused training step runs on the CPU only");
    }
    let cfg = Config::preset(&args.preset)?;
    let varmap = weights::varmap(&cfg, 1, BiasInit::Zero, DType::F32, &device)?;
    let model =
        WaveNetAutoencoder::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
    let mut opt = Optimizer::new(&varmap, OptimizerConfig::default())?;
    let n = args.batch * args.crop;
    let audio: Vec<f32> = (0..n)
        .map(|i| {
            autoencoder::mulaw::scaled(
                0.5 * ((i as f32) * 0.031).sin() * ((i % 977) as f32 / 977.0),
            )
        })
        .collect();
    let x = Tensor::from_vec(audio.clone(), (args.batch, args.crop), &device)?;
    // A pitched preset trains with its excitation (A3 on every crop), as training does.
    let f0 = vec![220.0f32; args.batch];
    let excitation =
        engine::models::excitation::excitation_tensor(&model, Some(&f0), args.crop, &[])?;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    // The fused step's buffers only where it runs (the CPU).
    let mut fused = (path == TrainPath::Fused)
        .then(|| autoencoder::wavenet::fused::FusedStep::new(&cfg, threads))
        .transpose()?;
    let excitation_host = excitation
        .as_ref()
        .map(|e| e.flatten_all().and_then(|e| e.to_vec1::<f32>()))
        .transpose()?;
    let mut seconds = 0f64;
    let mut loss = 0f64;
    for step in 0..=args.steps {
        let t0 = Instant::now();
        loss = match path {
            TrainPath::Reference => {
                let loss = model.loss_excited(&x, None, excitation.as_ref())?;
                opt.step(&loss, 1e-4)?;
                loss.to_dtype(DType::F64)?.to_scalar::<f64>()?
            }
            TrainPath::Fused => {
                let fused = fused
                    .as_mut()
                    .ok_or_else(|| anyhow!("the fused step was not made"))?;
                {
                    let vars = varmap
                        .data()
                        .lock()
                        .map_err(|_| anyhow!("variable map lock poisoned"))?;
                    fused.load(|name| vars.get(name).map(|v| v.as_tensor()))?;
                }
                let out = fused.run(&autoencoder::wavenet::fused::FusedBatch {
                    batch: args.batch,
                    time: args.crop,
                    scaled: &audio,
                    inputs: None,
                    excitation: excitation_host.as_deref(),
                })?;
                opt.step_with(&out.grads, 1e-4)?;
                out.loss
            }
        };
        if step > 0 {
            seconds += t0.elapsed().as_secs_f64();
        }
    }
    let steps = args.steps.max(1) as f64;
    let mut out = Output::default();
    out.line(format!(
        "path={} preset={} batch={} crop={} device={} threads={threads}",
        match path {
            TrainPath::Fused => "fused",
            TrainPath::Reference => "reference",
        },
        args.preset,
        args.batch,
        args.crop,
        engine::device::describe(&device),
    ));
    out.line(format!("step_ms={:.0}", 1e3 * seconds / steps));
    out.line(format!("last_loss={loss:.4}"));
    out.line(format!("samples_per_s={:.0}", n as f64 * steps / seconds));
    out.line(format!("peak_rss_mb={:.0}", peak_rss_mb()?));
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// This process's peak resident memory (`VmHWM`), in MB.
fn peak_rss_mb() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| anyhow!("cannot read /proc/self/status: {e}"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .ok_or_else(|| anyhow!("/proc/self/status has no VmHWM line"))?;
    Ok(kb / 1024.0)
}

/// Both paths, each in a child process (this binary with `--path`): the fused path's
/// figures under the plain names, the reference's prefixed `reference_`.
fn train_both(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let device = engine::device::by_name(&args.device).map_err(|e| anyhow!(e))?;
    if !device.is_cpu() {
        // The fused step is the CPU's; on any other device training is candle's autograd,
        // so that is what there is to time.
        eprintln!(
            "the fused training step runs on the CPU only: timing the autograd path (what training uses on {}) alone",
            engine::device::describe(&device)
        );
        return train(&TrainArgs {
            path: Some(TrainPath::Reference),
            ..args.clone()
        });
    }
    let exe = std::env::current_exe().map_err(|e| anyhow!("cannot find this program: {e}"))?;
    let child = |path: &str| -> anyhow::Result<std::collections::HashMap<String, String>> {
        let out = std::process::Command::new(&exe)
            .args(["bench", "train", "--path", path, "--preset", &args.preset])
            .args([
                "--batch",
                &args.batch.to_string(),
                "--crop",
                &args.crop.to_string(),
            ])
            .args(["--steps", &args.steps.to_string(), "--device", &args.device])
            .output()
            .map_err(|e| anyhow!("cannot run {}: {e}", exe.display()))?;
        if !out.status.success() {
            anyhow::bail!(
                "the {path} benchmark failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    };
    let fused = child("fused")?;
    let reference = child("reference")?;
    let get = |m: &std::collections::HashMap<String, String>, k: &str| {
        m.get(k)
            .cloned()
            .ok_or_else(|| anyhow!("the benchmark printed no {k}="))
    };
    let rate = |m| -> anyhow::Result<f64> { Ok(get(m, "samples_per_s")?.parse::<f64>()?) };
    let mut out = Output::default();
    out.line(format!(
        "preset={} batch={} crop={} steps={} threads={}",
        args.preset,
        args.batch,
        args.crop,
        args.steps,
        get(&fused, "threads")?
    ));
    out.line(format!("samples_per_s={}", get(&fused, "samples_per_s")?));
    out.line(format!("peak_rss_mb={}", get(&fused, "peak_rss_mb")?));
    out.line(format!("step_ms={}", get(&fused, "step_ms")?));
    out.line(format!(
        "reference_samples_per_s={}",
        get(&reference, "samples_per_s")?
    ));
    out.line(format!(
        "reference_peak_rss_mb={}",
        get(&reference, "peak_rss_mb")?
    ));
    out.line(format!("reference_step_ms={}", get(&reference, "step_ms")?));
    out.line(format!(
        "speedup={:.2}",
        rate(&fused)? / rate(&reference)?.max(1e-9)
    ));
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
