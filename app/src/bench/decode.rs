//! `timbrel bench decode`: decoding speed on random weights (the autoregressive
//! generators), on the shipped or a given student, or on a SampleRNN, optionally beside
//! busy threads.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::anyhow;
use autoencoder::Config;
use autoencoder::WaveNetAutoencoder;
use autoencoder::wavenet::weights::BiasInit;
use candle_core::DType;
use candle_nn::VarBuilder;

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// Voices decoded together.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Samples per voice (rounded up to whole frames of 512).
    #[arg(long, default_value_t = 16384)]
    pub samples: usize,
    /// Threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// cpu, or cuda (the tensor decoder on GPU 0, in a build with the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Time the tensor decoder (the GPU's) even on the CPU device.
    #[arg(long)]
    pub tensor: bool,
    /// Time the reference generator (autoencoder::FastGenerator, one thread) instead.
    #[arg(long)]
    pub reference: bool,
    /// Force the portable kernels even where AVX2+FMA is available.
    #[arg(long)]
    pub generic: bool,
    /// How voices are spread over threads: auto, voices or columns.
    #[arg(long, default_value = "auto")]
    pub parallelism: String,
    /// autoregressive (a random model of --preset), or parallel: the Parallel WaveNet
    /// student shipped with the default model (or --model's), through the engine.
    #[arg(long, value_enum, default_value_t = crate::synth::DecoderArg::Autoregressive)]
    pub decoder: crate::synth::DecoderArg,
    /// With --decoder parallel: a student's directory, or a model directory with one in
    /// student/.
    #[arg(long, value_name = "DIR")]
    pub model: Option<std::path::PathBuf>,
    /// Busy threads run beside the benchmark (a loaded computer), stopped when it ends.
    #[arg(long, default_value_t = 0)]
    pub load: usize,
}

/// `n` threads spinning until the guard is dropped: other programs using the cores.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(n: usize) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(
                                x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1),
                            );
                        }
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

pub(super) fn decode(args: &DecodeArgs) -> anyhow::Result<ExitCode> {
    use autoencoder::Control;
    use autoencoder::cpu::Isa;
    use autoencoder::wavenet::cpu::{CpuGenerator, Parallelism};
    use autoencoder::{FastGenerator, Generator, Request, Sampling, TensorGenerator};

    let device = engine::device::by_name(&args.device).map_err(|e| anyhow!(e))?;
    if args.batch == 0 || args.samples == 0 {
        return Err(anyhow!("--batch and --samples must be at least 1"));
    }
    let _load = (args.load > 0).then(|| Load::start(args.load));
    if args.load > 0 {
        eprintln!("{} busy threads running beside the benchmark", args.load);
    }
    match args.decoder {
        crate::synth::DecoderArg::Parallel => return decode_parallel(args, &device),
        crate::synth::DecoderArg::Samplernn => return decode_samplernn(args, &device),
        crate::synth::DecoderArg::Autoregressive => {}
    }
    let cfg = Config::preset(&args.preset)?;
    let model = WaveNetAutoencoder::random(&cfg, 1, BiasInit::Uniform(0.1), &device)?;
    let hop = cfg.ae_hop_length;
    let frames = args.samples.div_ceil(hop);
    let per_voice = frames * hop;
    let bn = cfg.ae_bottleneck_width;
    let encoding: Vec<f32> = (0..args.batch * frames * bn)
        .map(|i| ((i as f32) * 0.37).sin())
        .collect();
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let sampling = Sampling::default();
    // A pitched preset plays A3 (220 Hz: 16 harmonics under the cutoff), so the
    // excitation's oscillators and projections run as they do in a render.
    let f0: Option<Vec<f32>> = cfg.pitched().then(|| vec![220.0; args.batch * per_voice]);
    let f0 = f0.as_deref();
    let streams: Vec<u64> = (0..args.batch as u64).collect();
    let mut out = Output::default();
    let seconds = if args.tensor || !device.is_cpu() {
        let generator = TensorGenerator::new(&model, &device)?;
        // One frame first: the device's kernels load and its memory pool fills.
        let request = |encoding, f0| Request {
            encoding,
            f0,
            streams: &streams,
            sampling,
            threads,
        };
        generator.generate(
            &request(&encoding[..args.batch * bn], None),
            &Control::default(),
        )?;
        let started = Instant::now();
        generator.generate(&request(&encoding, f0), &Control::default())?;
        out.line(format!(
            "preset={} batch={} samples={per_voice} decoder=tensor device={}",
            args.preset,
            args.batch,
            engine::device::describe(&device)
        ));
        started.elapsed().as_secs_f64()
    } else if args.reference {
        let mut generator = FastGenerator::new(&model, args.batch)?;
        let started = Instant::now();
        generator.generate(&encoding, f0, sampling, &Control::default())?;
        out.line(format!(
            "preset={} batch={} samples={per_voice} decoder=reference threads=1",
            args.preset, args.batch
        ));
        started.elapsed().as_secs_f64()
    } else {
        let isa = if args.generic {
            Isa::Generic
        } else {
            Isa::detect()
        };
        let parallelism = match args.parallelism.as_str() {
            "auto" => Parallelism::Auto,
            "voices" => Parallelism::Voices,
            "columns" => Parallelism::Columns,
            other => {
                return Err(anyhow!(
                    "--parallelism {other}: expected auto, voices or columns"
                ));
            }
        };
        let decoder = CpuGenerator::with_isa(&model, isa)?.with_parallelism(parallelism);
        let control = Control::default();
        let started = Instant::now();
        let request = Request {
            encoding: &encoding,
            f0,
            streams: &streams,
            sampling,
            threads,
        };
        decoder.generate(&request, &control)?;
        let seconds = started.elapsed().as_secs_f64();
        let solo = control.solo_from.load(std::sync::atomic::Ordering::Relaxed);
        if solo > 0 {
            out.line(format!("one_thread_from_sample={solo}"));
        }
        out.line(format!(
            "preset={} batch={} samples={per_voice} decoder=cpu isa={} threads={threads} parallelism={:?}",
            args.preset,
            args.batch,
            isa.name(),
            decoder.parallelism_for(args.batch, threads)
        ));
        let macs = decoder.macs_per_sample() as f64;
        out.line(format!("macs_per_sample={macs:.0}"));
        out.line(format!(
            "gflops={:.1}",
            2.0 * macs * (args.batch * per_voice) as f64 / seconds / 1e9
        ));
        seconds
    };
    let aggregate = (args.batch * per_voice) as f64 / seconds;
    out.line(format!("seconds={seconds:.3}"));
    out.line(format!("samples_per_s={aggregate:.0}"));
    out.line(format!(
        "realtime_factor={:.3}",
        aggregate / args.batch as f64 / f64::from(engine::audio::SAMPLE_RATE_HZ)
    ));
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `bench decode --decoder parallel`: the student renders `--batch` voices of
/// `--samples` at A3 through [`engine::synth::Engine::decode_at`] (noise, excitation,
/// flows; encoding excluded), after one untimed warm-up render of one frame.
fn decode_parallel(args: &DecodeArgs, device: &candle_core::Device) -> anyhow::Result<ExitCode> {
    use engine::synth::{DecoderKind, Engine, ModelSource};
    let source = args
        .model
        .clone()
        .map_or(ModelSource::Default, ModelSource::Dir);
    let engine = Engine::load(&source, Some(DecoderKind::Parallel), device)?;
    decode_engine(args, engine, device)
}

/// `bench decode --decoder samplernn`: a SampleRNN (`--model`'s, or one of random weights
/// of the `samplernn` preset) plays `--batch` voices as [`decode_parallel`] times them.
fn decode_samplernn(args: &DecodeArgs, device: &candle_core::Device) -> anyhow::Result<ExitCode> {
    use autoencoder::samplernn::{SampleRnn, SampleRnnConfig};
    use engine::synth::{DecoderKind, Engine, ModelSource};
    let engine = match &args.model {
        Some(dir) => Engine::load(
            &ModelSource::Dir(dir.clone()),
            Some(DecoderKind::SampleRnn),
            device,
        )?,
        None => {
            let cfg = SampleRnnConfig::samplernn();
            let varmap = candle_nn::VarMap::new();
            let model =
                SampleRnn::new(&cfg, &VarBuilder::from_varmap(&varmap, DType::F32, device))?;
            Engine::with_samplernn(model, "random samplernn".into(), "random".into())?
        }
    };
    decode_engine(args, engine, device)
}

/// Times `engine` decoding `--batch` voices of `--samples` at A3 (after an untimed
/// one-frame warm-up): `samples_per_s=` and `realtime_factor=`.
fn decode_engine(
    args: &DecodeArgs,
    mut engine: engine::synth::Engine,
    device: &candle_core::Device,
) -> anyhow::Result<ExitCode> {
    use autoencoder::Control;
    use engine::synth::{Embedding, Glide};
    engine = engine.with_cache(None);
    if let Some(t) = args.threads {
        engine = engine.with_threads(t);
    }
    let hop = engine.hop();
    let bn = engine.bottleneck();
    let frames = args.samples.div_ceil(hop);
    let per_voice = frames * hop;
    let voice = |frames: usize| Embedding {
        frames,
        channels: bn,
        data: (0..frames * bn)
            .map(|i| ((i as f32) * 0.37).sin())
            .collect(),
    };
    let embeddings = vec![voice(frames); args.batch];
    let pitches = vec![engine.pitched().then(|| Glide::at(57.0)); args.batch];
    let streams: Vec<u64> = (0..args.batch as u64).collect();
    let sampling = autoencoder::Sampling::default();
    let mut quiet = |_: &engine::synth::DecodeProgress| std::ops::ControlFlow::Continue(());
    engine.decode_at(
        &[voice(1)],
        &pitches[..1],
        &streams[..1],
        sampling,
        &Control::default(),
        &mut quiet,
    )?;
    let started = Instant::now();
    engine.decode_at(
        &embeddings,
        &pitches,
        &streams,
        sampling,
        &Control::default(),
        &mut quiet,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let mut out = Output::default();
    out.line(format!(
        "model={} batch={} samples={per_voice} decoder={} threads={} device={}",
        engine.name(),
        args.batch,
        engine.kind().name(),
        engine.threads(),
        engine::device::describe(device)
    ));
    let aggregate = (args.batch * per_voice) as f64 / seconds;
    out.line(format!("seconds={seconds:.3}"));
    out.line(format!("samples_per_s={aggregate:.0}"));
    out.line(format!(
        "realtime_factor={:.3}",
        aggregate / args.batch as f64 / engine::audio::SAMPLE_RATE_HZ as f64
    ));
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
