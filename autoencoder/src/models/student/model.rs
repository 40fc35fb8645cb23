//! The student's flows: each a small conditioned WaveNet giving a shift and a log-scale
//! per sample, applied to the previous flow's output.

use candle_core::{D, Tensor};
use candle_nn::{Init, Module, VarBuilder};

use super::StudentConfig;
use crate::nn::conv::{Conv1d, Conv1dConfig, Padding};
use crate::nn::gated::{GatedDims, GatedLayer, one_by_one, shift_right};
use crate::{Error, Result};

/// The log-scale offset of the flows, summed (each adds its share to its `log s`, a fixed
/// part of the architecture): `S ≈ 0.05` at first, so
/// the untrained student whispers (logistic noise of scale 0.05, about −20 dBFS RMS)
/// instead of clipping (scale 1 is ±4 at the tails).
pub(super) const INITIAL_LOG_SCALE: f64 = -3.0;

/// The gain a new sub-partial bank starts at for every sub-partial (`exp` of its bias;
/// the map from the embedding starts at zero): 0.002, about −54 dBFS, a little above the
/// untrained flows' own output at those frequencies, so the loss's gradient reaches every
/// gain from the first step (a partial grown at zero amplitude gets none on average: the
/// saddle that kept the excitation's sub-partial rows at zero, MODEL.md session 9).
pub const BANK_INITIAL_GAIN: f64 = 0.002;

/// The bank's log-gains are `BANK_RATE · (e_f · W + b)`: a fixed factor that lets Adam,
/// whose steps are about the learning rate whatever the gradient's size, move a gain by
/// `e` in a hundred steps rather than a thousand (a sub-octave at the level of its note is
/// some 8 nepers above [`BANK_INITIAL_GAIN`]).
pub const BANK_RATE: f64 = 10.0;

/// Where the bank's variables live: `subpartial_bank/W` `[1, 1, bottleneck, N]` and
/// `subpartial_bank/biases` `[N]`.
pub const BANK_PREFIX: &str = "subpartial_bank/";

/// A bank gain from its pre-activation `v = e_f · W + b`: `exp(BANK_RATE · v)`.
#[inline]
pub(super) fn bank_gain(v: f32) -> f32 {
    (BANK_RATE as f32 * v).exp()
}

/// Scales a frame's bank gains `g` by the amplitudes its measured channels (its last
/// `g.len()`, see [`measured_channels`]) hold: `g_m · a_m` (the gain's derivative with
/// respect to its pre-activation stays `BANK_RATE · g`).
#[inline]
pub(super) fn scale_by_measured(g: &mut [f32], frame: &[f32]) {
    let c = &frame[frame.len() - g.len()..];
    for (o, &m) in g.iter_mut().zip(c) {
        *o *= measured_amplitude(m);
    }
}

/// One sample of the bank: `Σ_m g_m · sin_m`, from the frame's gains and the sample's
/// sub-partial channels of the excitation (`(sin, cos)` pairs).
#[inline]
pub(super) fn bank_sample(gains: &[f32], sub: &[f32]) -> f32 {
    gains
        .iter()
        .zip(sub.chunks_exact(2))
        .map(|(&g, pair)| g * pair[0])
        .sum()
}

/// Amplitudes below this (−60 dBFS) count as it in [`bank_match`]: a silent sub-partial
/// asks for a quiet gain, not for one falling without end.
pub const BANK_MATCH_FLOOR: f32 = 1e-3;

/// One gain's share of the bank's match term and its derivative with respect to the gain:
/// `(ln(g + ε) − ln(a + ε))²`, `ε =` [`BANK_MATCH_FLOOR`], against the amplitude `a` the
/// note has at that sub-partial ([`subpartial_amplitudes`]).
pub fn bank_match(gain: f32, amplitude: f32) -> (f32, f32) {
    let eps = BANK_MATCH_FLOOR;
    let d = (gain + eps).ln() - (amplitude.max(0.0) + eps).ln();
    (d * d, 2.0 * d / (gain + eps))
}

/// The longest window [`subpartial_amplitudes`] measures over, in hops: eight (4,096
/// samples, the training crop), so a crop and a whole note measure alike.
pub const MEASURE_MAX_HOPS: usize = 8;

/// The window [`subpartial_amplitudes`] measures a note over, in samples, from the
/// fundamental's phase step `step` (radians a sample): a whole number of periods of the
/// lowest sub-partial (`f0/4`), at least three and at least three hops' worth, so every
/// partial of the `f0/4` grid but the one measured falls on a zero of the Hann window's
/// spectrum; `None` where that is longer than [`MEASURE_MAX_HOPS`] hops or `time` (notes
/// below about 47 Hz, whose sub-partials the window cannot tell from their harmonics).
pub fn measure_window(hop: usize, time: usize, step: f64) -> Option<usize> {
    if step.is_nan() || step <= 0.0 {
        return None;
    }
    let period = 4.0 * std::f64::consts::TAU / step;
    let periods = (3.0f64).max((3 * hop) as f64 / period).ceil();
    let len = (period * periods).round() as usize;
    (len >= 2 && len <= (MEASURE_MAX_HOPS * hop).min(time)).then_some(len)
}

/// The fundamental's mean phase step (radians a sample) over an excitation `[time, k2]`
/// (its first two channels), over the samples where it sounds; 0 where it never does.
fn fundamental_step(excitation: &[f32], k2: usize) -> f64 {
    let (mut sum, mut count) = (0f64, 0usize);
    let rows = || {
        excitation
            .chunks_exact(k2)
            .map(|r| (f64::from(r[0]), f64::from(r[1])))
    };
    for ((s0, c0), (s1, c1)) in rows().zip(rows().skip(1)) {
        if s0 * s0 + c0 * c0 > 0.5 && s1 * s1 + c1 * c1 > 0.5 {
            sum += (s1 * c0 - c1 * s0).atan2(c1 * c0 + s1 * s0);
            count += 1;
        }
    }
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// Per embedding frame, the amplitude of each sub-partial in `audio` `[time]` (a note with
/// its excitation `[time, 2K + 2N]`): `2·|Σ w_t x_t (sin_m + i·cos_m)| / Σ w_t` over a Hann
/// window centred on the frame (moved inside the crop at its ends), the lock-in
/// measurement of a sine at the sub-partial's phase, whatever its own phase. `[frames, N]`;
/// a sine of amplitude `g` there measures `g` (what the bank's gain `g` plays). The
/// window ([`measure_window`]) spans whole periods of `f0/4`, so the note's harmonics
/// and its other sub-partials leak nothing into the measurement; all zero where the note
/// is unpitched or too low for a window (see there).
pub fn subpartial_amplitudes(cfg: &StudentConfig, audio: &[f32], excitation: &[f32]) -> Vec<f32> {
    let (hop, n) = (cfg.hop_length, cfg.excitation_subpartials);
    let (k2, first) = (cfg.excitation_channels(), 2 * cfg.excitation_harmonics);
    let time = audio.len();
    let frames = time / hop;
    let mut out = vec![0f32; frames * n];
    if n == 0 || excitation.len() != time * k2 || cfg.excitation_harmonics == 0 {
        return out;
    }
    let Some(len) = measure_window(hop, time, fundamental_step(excitation, k2)) else {
        return out;
    };
    let mut acc = vec![(0f64, 0f64); n];
    for (f, row) in out.chunks_exact_mut(n).enumerate() {
        acc.fill((0.0, 0.0));
        // Centred on the frame, moved inside the crop at its ends (a whole Hann window
        // leaks far less than a cut one).
        let start = (f * hop + hop / 2).saturating_sub(len / 2).min(time - len);
        let end = start + len;
        let mut total = 0f64;
        for t in start..end {
            let phase = (t - start) as f64 + 0.5;
            let w = (std::f64::consts::PI * phase / len as f64).sin().powi(2);
            total += w;
            let x = w * f64::from(audio[t]);
            let sub = &excitation[t * k2 + first..(t + 1) * k2];
            for (a, pair) in acc.iter_mut().zip(sub.chunks_exact(2)) {
                a.0 += x * f64::from(pair[0]);
                a.1 += x * f64::from(pair[1]);
            }
        }
        for (o, a) in row.iter_mut().zip(&acc) {
            *o = (2.0 * (a.0 * a.0 + a.1 * a.1).sqrt() / total.max(1e-12)) as f32;
        }
    }
    out
}

/// The floor under a measured amplitude in its channel ([`measured_channels`]): −80 dBFS,
/// so its log stays finite; [`measured_amplitude`] takes it off again.
pub const MEASURED_FLOOR: f32 = 1e-4;

/// The measured channels `[frames, N]` of a note `audio` `[time]` with its excitation
/// `[time, 2K + 2N]` at its own pitch (`None`: unpitched): `ln(a + ε) / r` of each
/// sub-partial's amplitude `a` ([`subpartial_amplitudes`]), `ε =` [`MEASURED_FLOOR`], `r
/// =` [`BANK_RATE`]; the bank plays `a` times its learnt gain. A log, so blending two
/// notes' frames blends their sub-partials' levels in decibels.
pub fn measured_channels(
    cfg: &StudentConfig,
    audio: &[f32],
    excitation: Option<&[f32]>,
) -> Vec<f32> {
    let n = cfg.excitation_subpartials;
    let frames = audio.len() / cfg.hop_length;
    let amplitudes = match excitation {
        Some(e) => subpartial_amplitudes(cfg, audio, e),
        None => vec![0.0; frames * n],
    };
    amplitudes.into_iter().map(measured_channel).collect()
}

/// A measured channel from its sub-partial's amplitude `a`: `ln(a + ε) / r` (see
/// [`measured_channels`]).
pub fn measured_channel(a: f32) -> f32 {
    (a.max(0.0) + MEASURED_FLOOR).ln() / BANK_RATE as f32
}

/// The amplitude a measured channel `c` holds: `max(exp(r·c) − ε, 0)` (the inverse of
/// [`measured_channel`]).
#[inline]
pub fn measured_amplitude(c: f32) -> f32 {
    ((BANK_RATE as f32 * c).exp() - MEASURED_FLOOR).max(0.0)
}

/// The sub-partial bank: `a_t = Σ_m exp(u_m(f)) · sin(m·φ_t/4)` for the `N` sub-partials
/// `m` of the excitation (its sine channels, zero above the cutoff and while unpitched),
/// with `u(f) = BANK_RATE · (e_f · W + b)` of embedding frame `f = ⌊t / hop⌋` (for a
/// student with measured sub-partials, `+ ln a_m(f)`, the amplitude the frame measured);
/// added to the flows'
/// output (a shift of every sample's logistic: the entropy is unchanged). A partial the
/// flows would have to learn from zero weights is learnt from a gain that is never zero.
#[derive(Debug)]
pub struct SubpartialBank {
    /// `[bottleneck, N]`.
    pub(super) w: Tensor,
    /// `[N]`.
    pub(super) b: Tensor,
    /// The frames end in measured channels, added to the pre-activations.
    measured: bool,
}

/// A new bank's bias: every gain at [`BANK_INITIAL_GAIN`]; with measured sub-partials 0,
/// every gain the measured amplitude.
pub fn bank_initial_bias(cfg: &StudentConfig) -> f64 {
    if cfg.measured_subpartials {
        0.0
    } else {
        BANK_INITIAL_GAIN.ln() / BANK_RATE
    }
}

impl SubpartialBank {
    fn new(cfg: &StudentConfig, vb: &VarBuilder) -> Result<Self> {
        let n = cfg.excitation_subpartials;
        let w = vb.get_with_hints(
            (1, 1, cfg.bottleneck, n),
            &format!("{BANK_PREFIX}W"),
            Init::Const(0.0),
        )?;
        let b = vb.get_with_hints(
            n,
            &format!("{BANK_PREFIX}biases"),
            Init::Const(bank_initial_bias(cfg)),
        )?;
        Ok(Self {
            w: w.reshape((cfg.bottleneck, n))?,
            b,
            measured: cfg.measured_subpartials,
        })
    }

    /// The gains `[batch, frames, N]` of the embedding `[batch, frames, bottleneck]`.
    pub fn gains(&self, encoding: &Tensor) -> Result<Tensor> {
        let (batch, frames, bn) = encoding.dims3()?;
        let n = self.b.dims1()?;
        let mut g = encoding
            .reshape((batch * frames, bn))?
            .matmul(&self.w)?
            .broadcast_add(&self.b)?
            .affine(BANK_RATE, 0.0)?
            .exp()?;
        if self.measured {
            let a = encoding
                .narrow(D::Minus1, bn - n, n)?
                .reshape((batch * frames, n))?
                .affine(BANK_RATE, 0.0)?
                .exp()?
                .affine(1.0, -f64::from(MEASURED_FLOOR))?
                .relu()?;
            g = (g * a)?;
        }
        Ok(g.reshape((batch, frames, n))?)
    }

    /// `a` `[batch, time]` from the embedding `[batch, frames, bottleneck]` and the
    /// excitation `[batch, time, 2K + 2N]`.
    fn forward(
        &self,
        cfg: &StudentConfig,
        encoding: &Tensor,
        excitation: &Tensor,
    ) -> Result<Tensor> {
        let (batch, frames, _) = encoding.dims3()?;
        let (_, time, _) = excitation.dims3()?;
        let n = cfg.excitation_subpartials;
        let hop = time / frames;
        let gain = self
            .gains(encoding)?
            .reshape((batch, frames, 1, n))?
            .broadcast_as((batch, frames, hop, n))?
            .reshape((batch, time, n))?;
        let sines = excitation
            .narrow(D::Minus1, 2 * cfg.excitation_harmonics, 2 * n)?
            .reshape((batch, time, n, 2))?
            .narrow(D::Minus1, 0, 1)?
            .squeeze(D::Minus1)?;
        Ok((gain * sines)?.sum(D::Minus1)?)
    }
}

/// One flow: `(μ, log s)` per sample from the input shifted right by one.
#[derive(Debug)]
pub(super) struct Flow {
    pub(super) start: Conv1d,
    pub(super) layers: Vec<GatedLayer>,
    /// `[width] → [μ, log s]`.
    pub(super) out: Conv1d,
}

impl Flow {
    fn new(cfg: &StudentConfig, layers: usize, vb: &VarBuilder) -> Result<Self> {
        let causal = |dilation| Conv1dConfig {
            filter_length: cfg.filter_length,
            dilation,
            padding: Padding::Causal,
        };
        let (w, bn, e) = (cfg.width, cfg.bottleneck, cfg.excitation_channels());
        let start = Conv1d::new(vb, "startconv", 1, w, causal(1))?;
        let dims = GatedDims {
            width: w,
            skip_width: w,
            bottleneck: bn,
            excitation: e,
            filter_length: cfg.filter_length,
        };
        let layers = (0..layers)
            .map(|i| GatedLayer::new(vb, i + 1, dims, cfg.dilation(i)))
            .collect::<Result<Vec<_>>>()?;
        // The head starts at zero weights (created here first, so the VarMap keeps this
        // hint): the flow begins as x · s₀, so training starts from scaled noise, not from
        // a random transform (as Glow zeroes its last layers).
        vb.get_with_hints((1, 1, w, 2), "out/W", Init::Const(0.0))?;
        let out = one_by_one(vb, "out", w, 2)?;
        Ok(Self { start, layers, out })
    }

    /// `(μ, log s)`, each `[batch, time]`, for the input `x` `[batch, time]`.
    fn forward(
        &self,
        x: &Tensor,
        encoding: &Tensor,
        excitation: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let mut l = self.start.forward(&shift_right(&x.unsqueeze(2)?)?)?;
        let mut s: Option<Tensor> = None;
        for layer in &self.layers {
            let (next, k) = layer.forward(&l, encoding, excitation)?;
            l = next;
            s = Some(match s {
                Some(s) => (s + k)?,
                None => k,
            });
        }
        let s = s.ok_or_else(|| Error::Shape("a flow with no layers".into()))?;
        let out = self.out.forward(&s.relu()?)?;
        let mu = out.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)?;
        let log_s = out.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)?;
        Ok((mu, log_s))
    }
}

/// What the student makes of its noise: the audio and, per sample, the logistic it was
/// drawn from given the noise before it (`x = z · scale + mean`).
#[derive(Debug)]
pub struct StudentOutput {
    /// `[batch, time]`.
    pub audio: Tensor,
    /// `M_t`, `[batch, time]`.
    pub mean: Tensor,
    /// `log S_t`, `[batch, time]`.
    pub log_scale: Tensor,
}

/// The Parallel WaveNet student.
#[derive(Debug)]
pub struct Student {
    config: StudentConfig,
    flows: Vec<Flow>,
    bank: Option<SubpartialBank>,
}

impl Student {
    /// Builds the student from the variables behind `vb` (`flow_F/...`, `F` from 1).
    pub fn new(config: &StudentConfig, vb: &VarBuilder) -> Result<Self> {
        config.validate()?;
        let flows = config
            .flows
            .iter()
            .enumerate()
            .map(|(f, &layers)| Flow::new(config, layers, &vb.pp(format!("flow_{}", f + 1))))
            .collect::<Result<Vec<_>>>()?;
        let bank = config
            .subpartial_bank
            .then(|| SubpartialBank::new(config, vb))
            .transpose()?;
        Ok(Self {
            config: config.clone(),
            flows,
            bank,
        })
    }

    pub fn config(&self) -> &StudentConfig {
        &self.config
    }

    pub(super) fn flows(&self) -> &[Flow] {
        &self.flows
    }

    /// The sub-partial bank, for a student with one.
    pub fn bank(&self) -> Option<&SubpartialBank> {
        self.bank.as_ref()
    }

    /// Turns the noise `z` `[batch, time]` into audio, given the embedding `[batch,
    /// frames, bottleneck]` (time a multiple of frames) and, for a student with an
    /// excitation, the excitation `[batch, time, 2K + 2N]` (`None`: unpitched). A student
    /// with a sub-partial bank adds it last.
    pub fn forward(
        &self,
        z: &Tensor,
        encoding: &Tensor,
        excitation: Option<&Tensor>,
    ) -> Result<StudentOutput> {
        let (batch, time) = z.dims2()?;
        let (enc_batch, frames, channels) = encoding.dims3()?;
        if enc_batch != batch
            || frames == 0
            || time % frames != 0
            || channels != self.config.bottleneck
        {
            return Err(Error::Shape(format!(
                "the student needs noise [{batch}, time] with time a multiple of the frames of an embedding [{batch}, frames, {}]; got time {time} and [{enc_batch}, {frames}, {channels}]",
                self.config.bottleneck
            )));
        }
        let excitation = excitation.filter(|_| self.config.excitation_harmonics > 0);
        let share = INITIAL_LOG_SCALE / self.flows.len() as f64;
        let mut x = z.clone();
        let mut mean = z.zeros_like()?;
        let mut log_scale = z.zeros_like()?;
        for flow in &self.flows {
            let (mu, log_s) = flow.forward(&x, encoding, excitation)?;
            let log_s = log_s.affine(1.0, share)?;
            let s = log_s.exp()?;
            x = ((x * &s)? + &mu)?;
            mean = ((mean * &s)? + mu)?;
            log_scale = (log_scale + log_s)?;
        }
        if let (Some(bank), Some(e)) = (&self.bank, excitation) {
            let a = bank.forward(&self.config, encoding, e)?;
            x = (x + &a)?;
            mean = (mean + a)?;
        }
        Ok(StudentOutput {
            audio: x,
            mean,
            log_scale,
        })
    }
}
