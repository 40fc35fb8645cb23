//! `timbrel bench ...`: speed, measured (never asserted in tests).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::anyhow;
use autoencoder::Config;
use autoencoder::WaveNetAutoencoder;
use autoencoder::optim::{Optimizer, OptimizerConfig};
use autoencoder::weights::{self, BiasInit};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::output::Output;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Training throughput on random weights and audio-like input: prints
    /// `samples_per_s=` (crop samples per second through forward, backward and update).
    Train(TrainArgs),
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[arg(long, default_value = "small")]
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
}

pub fn run(command: &Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Train(args) => train(args),
    }
}

fn train(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let device = engine::device::by_name(&args.device).map_err(|e| anyhow!(e))?;
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
    let x = Tensor::from_vec(audio, (args.batch, args.crop), &device)?;
    let (mut forward, mut backward) = (0f64, 0f64);
    for step in 0..=args.steps {
        let t0 = Instant::now();
        let loss = model.loss(&x)?;
        let _ = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let t1 = Instant::now();
        opt.step(&loss, 1e-4)?;
        let t2 = Instant::now();
        if step > 0 {
            forward += (t1 - t0).as_secs_f64();
            backward += (t2 - t1).as_secs_f64();
        }
    }
    let steps = args.steps.max(1) as f64;
    let mut out = Output::default();
    out.line(format!(
        "preset={} batch={} crop={} device={} threads={}",
        args.preset,
        args.batch,
        args.crop,
        engine::device::describe(&device),
        candle_core::utils::get_num_threads()
    ));
    out.line(format!("forward_ms={:.0}", 1e3 * forward / steps));
    out.line(format!("backward_update_ms={:.0}", 1e3 * backward / steps));
    out.line(format!(
        "samples_per_s={:.0}",
        n as f64 * steps / (forward + backward)
    ));
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
