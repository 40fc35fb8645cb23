//! The measured spectral envelope and the output stage that plays it.
//!
//! A student with `envelope_bands = B` carries, after the `bottleneck` channels of every
//! embedding frame, `B` measured ones: the source note's amplitude in each of `B`
//! triangular mel bands (HTK scale, 0 to 8 kHz) around the frame ([`measure`]). The flows
//! do not read them. The output stage ([`Shaper`]) does: it analyses what the flows
//! played in short windows ([`WINDOW`] samples every [`HOP`]), compares each band with
//! the frame's measured amplitude and turns the band up or down by the difference
//! (at most [`MAX_GAIN_DB`]; a band the flows left silent is never raised), refines
//! those gains where a band still misses with them applied ([`Bands::refine`], as often
//! as the student's `envelope_refinements` says), then resynthesises by overlap-add. The
//! flows make the note's fine structure (its partials, noise and phase); the envelope
//! makes its spectrum follow the source frame by frame, where the student alone missed by
//! 6.5 dB of log-mel distance on held-out notes (decays, an over-loud fundamental, pads
//! and organs; see the student's MODEL.md).
//!
//! Blends mix embedding frames linearly, so the envelope channels, being amplitudes, blend
//! as the mean of the sources' band amplitudes: a blend's spectrum lies between its
//! sources' by construction, and its level near their mean.
//!
//! Exactness: [`measure`] and [`Shaper`] share one analysis (window, filters, framing),
//! so a steady note shaped towards its own measured envelope comes back unchanged (the
//! resynthesis is exact: with every gain 1 the output is the input delayed by
//! [`WINDOW`], within float rounding). A whole-note render shapes through the same
//! streaming [`Shaper`] a live voice runs, then drops the delay, so the two agree sample
//! for sample. [`Shaper::process`] allocates nothing.

use std::f32::consts::PI;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::excitation::SAMPLE_RATE_HZ;

mod gradient;
pub use gradient::{NoteGains, apply_gains, gains_backward, note_gains};

/// Samples of an analysis window (16 ms at 16 kHz), and the shaper's delay.
pub const WINDOW: usize = 256;
/// Samples between analyses: a quarter window, so the square-root Hann windows of the
/// analysis and the resynthesis overlap-add to a constant (2).
pub const HOP: usize = WINDOW / 4;
/// The most a band is turned up or down, dB.
pub const MAX_GAIN_DB: f32 = 48.0;
/// A band of the flows' output quieter than this (dB of the band's amplitude, 0 dB a
/// full-scale sine's) is never raised: there is nothing there to shape but rounding.
pub const SILENT_DB: f32 = -120.0;
/// The most bands an envelope may have.
pub const MAX_BANDS: usize = 64;

const BINS: usize = WINDOW / 2 + 1;
/// The overlap-added windows' sum.
const OLA_GAIN: f32 = 2.0;

fn hz_to_mel(hz: f32) -> f32 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz(mel: f32) -> f32 {
    700.0 * (10f32.powf(mel / 2595.0) - 1.0)
}

/// `bands` triangular mel bands (HTK scale) from 0 Hz to Nyquist at 16 kHz over the
/// `fft_len / 2 + 1` bins of a real FFT of `fft_len`: `[band][bin]` weights, each peaking
/// at 1 at its band's centre.
pub fn mel_filters(bands: usize, fft_len: usize) -> Vec<Vec<f32>> {
    let bins = fft_len / 2 + 1;
    let nyquist = SAMPLE_RATE_HZ as f32 / 2.0;
    let top = hz_to_mel(nyquist);
    let edges: Vec<f32> = (0..bands + 2)
        .map(|i| mel_to_hz(top * i as f32 / (bands + 1) as f32))
        .collect();
    (0..bands)
        .map(|b| {
            let (lo, mid, hi) = (edges[b], edges[b + 1], edges[b + 2]);
            (0..bins)
                .map(|k| {
                    let f = k as f32 * nyquist / (bins - 1).max(1) as f32;
                    if f <= lo || f >= hi {
                        0.0
                    } else if f <= mid {
                        (f - lo) / (mid - lo)
                    } else {
                        (hi - f) / (hi - mid)
                    }
                })
                .collect()
        })
        .collect()
}

/// The analysis both [`measure`] and [`Shaper`] use: the window, the FFTs and the bands.
#[derive(Clone)]
pub struct Bands {
    bands: usize,
    /// Passes of [`Bands::refine`] after each window's first gains.
    refinements: usize,
    /// Square-root periodic Hann.
    window: Vec<f32>,
    /// `[band][bin]` triangular weights.
    filters: Vec<[f32; BINS]>,
    /// `[band][bin]`: how much of each band's gain a bin takes (its filter weight over
    /// the bin's sum of weights; DC and Nyquist, outside every band, take the first and
    /// the last band's whole gain, so a note's lowest partial, whose window leaks into
    /// DC, is turned with its band, not cut).
    apply: Vec<[f32; BINS]>,
    /// Per band, the scale that makes a full-scale sine at the band's centre read 1
    /// (0 dB).
    scale: Vec<f32>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

impl std::fmt::Debug for Bands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bands({})", self.bands)
    }
}

impl Bands {
    /// `bands` (1 to [`MAX_BANDS`]) triangular mel bands from 0 Hz to Nyquist.
    pub fn new(bands: usize) -> Self {
        let bands = bands.clamp(1, MAX_BANDS);
        let window: Vec<f32> = (0..WINDOW)
            .map(|i| (0.5 - 0.5 * (2.0 * PI * i as f32 / WINDOW as f32).cos()).sqrt())
            .collect();
        let filters: Vec<[f32; BINS]> = mel_filters(bands, WINDOW)
            .into_iter()
            .map(|f| std::array::from_fn(|k| f[k]))
            .collect();
        let weight: [f32; BINS] = std::array::from_fn(|k| filters.iter().map(|f| f[k]).sum());
        let last = filters.len() - 1;
        let apply = (0..filters.len())
            .map(|b| {
                std::array::from_fn(|k| {
                    if weight[k] > 0.0 {
                        filters[b][k] / weight[k]
                    } else if (k == 0 && b == 0) || (k > 0 && b == last) {
                        1.0
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        // A full-scale sine's peak bin has magnitude Σw / 2.
        let peak = window.iter().sum::<f32>() / 2.0;
        let scale = filters
            .iter()
            .map(|f| 1.0 / (peak * f.iter().copied().fold(0.0, f32::max).max(1e-6).sqrt()))
            .collect();
        let mut planner = RealFftPlanner::<f32>::new();
        Self {
            bands,
            refinements: 0,
            window,
            filters,
            apply,
            scale,
            forward: planner.plan_fft_forward(WINDOW),
            inverse: planner.plan_fft_inverse(WINDOW),
        }
    }

    /// The analysis of a student's envelope, for a student of `cfg` with one (with its
    /// refinements).
    pub fn of(cfg: &super::StudentConfig) -> Option<Self> {
        (cfg.envelope_bands > 0)
            .then(|| Self::new(cfg.envelope_bands).with_refinements(cfg.envelope_refinements))
    }

    /// The same bands, refining each window's gains `n` times ([`Bands::refine`]).
    pub fn with_refinements(mut self, n: usize) -> Self {
        self.refinements = n;
        self
    }

    /// Passes of [`Bands::refine`] after each window's first gains.
    pub fn refinements(&self) -> usize {
        self.refinements
    }

    /// Refines a window's band `gains` (linear, from [`band_gains`] of the window's band
    /// `power` towards `target`) for its `spectrum`, [`Bands::refinements`] times.
    ///
    /// A bin takes a mix of its bands' gains (`apply`), and a band reads its neighbours'
    /// bins, so after the first gains a band's power is not yet its target: most where
    /// a quiet band lies beside a loud one, as between a low note's partials. Each pass
    /// measures every band's power with the gains applied and moves its gain (in dB) by
    /// the difference, within the same limits (±[`MAX_GAIN_DB`], never up from below
    /// [`SILENT_DB`]). Measured on 72 TimGM6mb notes with the weights shipped before
    /// session 19 (16-bit-rounded scoring): log-mel 2.45 dB in one pass, 2.32 refined
    /// once, 2.27 twice, 2.25 three times. Allocates nothing.
    pub fn refine(
        &self,
        spectrum: &[Complex<f32>],
        power: &[f32],
        target: &[f32],
        gains: &mut [f32],
    ) {
        for _ in 0..self.refinements {
            let bins: [f32; BINS] = std::array::from_fn(|k| self.bin_gain(gains, k));
            for ((((g, filter), &s), &p), &a) in gains
                .iter_mut()
                .zip(&self.filters)
                .zip(&self.scale)
                .zip(power)
                .zip(target)
            {
                let shaped: f32 = filter
                    .iter()
                    .zip(spectrum)
                    .zip(&bins)
                    .map(|((&w, c), &b)| w * c.norm_sqr() * b * b)
                    .sum::<f32>()
                    * s
                    * s;
                let now = 20.0 * (*g).max(1e-12).log10();
                let mut gain = (now + db(a * a) - db(shaped)).clamp(-MAX_GAIN_DB, MAX_GAIN_DB);
                if db(p) < SILENT_DB {
                    gain = gain.min(0.0);
                }
                *g = 10f32.powf(gain / 20.0);
            }
        }
    }

    /// Bands of the envelope.
    pub fn len(&self) -> usize {
        self.bands
    }

    /// Whether it has no bands (never: at least one).
    pub fn is_empty(&self) -> bool {
        self.bands == 0
    }

    /// Bin `k`'s gain from the bands' (see `apply`).
    fn bin_gain(&self, band_gains: &[f32], k: usize) -> f32 {
        self.apply
            .iter()
            .zip(band_gains)
            .map(|(a, &g)| a[k] * g)
            .sum()
    }

    /// Scratch for [`Bands::spectrum`] and [`Bands::resynthesise`].
    fn scratch(&self) -> Vec<Complex<f32>> {
        let len = self
            .forward
            .get_scratch_len()
            .max(self.inverse.get_scratch_len());
        vec![Complex::new(0.0, 0.0); len]
    }

    /// The spectrum of `frame` (the last [`WINDOW`] samples, oldest first), windowed, into
    /// `spectrum` (`frame` is overwritten).
    fn spectrum(
        &self,
        frame: &mut [f32],
        spectrum: &mut [Complex<f32>],
        scratch: &mut [Complex<f32>],
    ) {
        for (x, &w) in frame.iter_mut().zip(&self.window) {
            *x *= w;
        }
        if self
            .forward
            .process_with_scratch(frame, spectrum, scratch)
            .is_err()
        {
            spectrum.fill(Complex::new(0.0, 0.0));
        }
    }

    /// [`Bands::spectrum`], and each band's power (in the envelope's scale, squared) into
    /// `power`.
    fn analyse(
        &self,
        frame: &mut [f32],
        spectrum: &mut [Complex<f32>],
        scratch: &mut [Complex<f32>],
        power: &mut [f32],
    ) {
        self.spectrum(frame, spectrum, scratch);
        for ((p, filter), &s) in power.iter_mut().zip(&self.filters).zip(&self.scale) {
            let sum: f32 = filter
                .iter()
                .zip(spectrum.iter())
                .map(|(&w, c)| w * c.norm_sqr())
                .sum();
            *p = sum * s * s;
        }
    }

    /// `spectrum` back into `frame` (unnormalised) and windowed again, ready to be
    /// overlap-added (`spectrum` is overwritten).
    fn resynthesise(
        &self,
        spectrum: &mut [Complex<f32>],
        scratch: &mut [Complex<f32>],
        frame: &mut [f32],
    ) {
        // The real inverse needs zero imaginary parts at DC and Nyquist.
        spectrum[0].im = 0.0;
        spectrum[BINS - 1].im = 0.0;
        if self
            .inverse
            .process_with_scratch(spectrum, frame, scratch)
            .is_err()
        {
            frame.fill(0.0);
        }
        for (y, &w) in frame.iter_mut().zip(&self.window) {
            *y *= w;
        }
    }
}

/// The samples `[end − WINDOW, end)` of `audio` (zeros outside it) into `frame`.
fn window_of(audio: &[f32], end: usize, frame: &mut [f32]) {
    for (i, x) in frame.iter_mut().enumerate() {
        *x = (end + i)
            .checked_sub(WINDOW)
            .and_then(|t| audio.get(t))
            .copied()
            .unwrap_or(0.0);
    }
}

/// The frame (of `hop` samples) whose envelope shapes the analysis window that ends after
/// sample `end` (exclusive): the one its centre falls in, the first before the note.
fn frame_of(end: u64, hop: usize) -> usize {
    let centre = end.saturating_sub((WINDOW / 2) as u64);
    (centre / hop.max(1) as u64) as usize
}

/// The envelope of `note` for frames of `hop` samples: `[frames][bands]`, frames =
/// `note.len() / hop`, each band's RMS amplitude over the analysis windows centred in the
/// frame (1: a full-scale sine in the band).
///
/// Measured on the note as the output stage can play it: after the same DC blocker
/// ([`super::generate::block_dc`]). A 256-sample window spreads a DC offset over its
/// lowest bins, so an offset in the source (FluidR3's program 88 at E5 puts 19 dB in
/// 0–40 Hz over −28 dB at 40–500 Hz) read as low partials; the stage, whose output
/// has no DC, then raised the flows' 40–160 Hz by up to 20 dB to match it (session 19).
pub fn measure(bands: &Bands, note: &[f32], hop: usize) -> Vec<f32> {
    let mut blocked = note.to_vec();
    super::generate::block_dc(&mut blocked);
    let note = &blocked[..];
    let b = bands.len();
    let frames = note.len() / hop.max(1);
    let mut sums = vec![0f64; frames * b];
    let mut counts = vec![0usize; frames];
    let mut frame = vec![0f32; WINDOW];
    let mut spectrum = bands.forward.make_output_vec();
    let mut scratch = bands.scratch();
    let mut power = vec![0f32; b];
    // Windows ending every HOP samples, until the last centre passes the last frame.
    let mut end = HOP as u64;
    while frames > 0 && end <= (frames * hop + WINDOW / 2) as u64 {
        let f = frame_of(end, hop);
        if f < frames && end >= (WINDOW / 2) as u64 {
            window_of(note, end as usize, &mut frame);
            bands.analyse(&mut frame, &mut spectrum, &mut scratch, &mut power);
            for (s, &p) in sums[f * b..(f + 1) * b].iter_mut().zip(&power) {
                *s += f64::from(p);
            }
            counts[f] += 1;
        }
        end += HOP as u64;
    }
    let mut out = vec![0f32; frames * b];
    for (f, &n) in counts.iter().enumerate() {
        for (o, &s) in out[f * b..(f + 1) * b]
            .iter_mut()
            .zip(&sums[f * b..(f + 1) * b])
        {
            *o = (s / n.max(1) as f64).sqrt() as f32;
        }
    }
    out
}

/// Moves a frame's `envelope` (its band amplitudes, one per band) `semitones` up the
/// frequency scale, in place: each band takes the amplitude the envelope had at its centre
/// frequency divided by the shift's ratio (linearly between the two nearest band centres,
/// held at the first and last band beyond them). A note played away from the pitch it was
/// measured at: its partials move with its f0, and so must the bands that hold them, or
/// the stage turns the new partials down and the gaps between them up (a C5 flute played
/// at A4, its envelope unmoved and the gains refined, read an octave low). Allocates
/// nothing; at most [`MAX_BANDS`] bands are moved.
pub fn shift(envelope: &mut [f32], semitones: f32) {
    let b = envelope.len().min(MAX_BANDS);
    if b < 2 || semitones == 0.0 || !semitones.is_finite() {
        return;
    }
    let mut was = [0f32; MAX_BANDS];
    was[..b].copy_from_slice(&envelope[..b]);
    let top = hz_to_mel(SAMPLE_RATE_HZ as f32 / 2.0);
    let ratio = 2f32.powf(semitones / 12.0);
    for (i, out) in envelope[..b].iter_mut().enumerate() {
        let centre = mel_to_hz(top * (i + 1) as f32 / (b + 1) as f32);
        // Fractional band index of the frequency the band reads from.
        let x = hz_to_mel(centre / ratio) / top * (b + 1) as f32 - 1.0;
        *out = if x <= 0.0 {
            was[0]
        } else if x >= (b - 1) as f32 {
            was[b - 1]
        } else {
            let k = x.floor() as usize;
            let t = x - k as f32;
            was[k] * (1.0 - t) + was[k + 1] * t
        };
    }
}

fn db(amplitude_squared: f32) -> f32 {
    10.0 * (amplitude_squared + 1e-20).log10()
}

/// The shaper's rule: each band's linear gain from its power in the flows' window and the
/// frame's measured amplitude (±[`MAX_GAIN_DB`], never up from below [`SILENT_DB`]); with
/// `slopes`, also each gain's derivative with respect to its band's power (`g = a / √P`
/// between the limits: `−g / 2P`; 0 at a limit or where the silence rule holds it).
fn band_gains(power: &[f32], target: &[f32], gains: &mut [f32], mut slopes: Option<&mut [f32]>) {
    for (i, ((g, &p), &a)) in gains.iter_mut().zip(power).zip(target).enumerate() {
        let actual = db(p);
        let wanted = db(a * a) - actual;
        let mut gain = wanted.clamp(-MAX_GAIN_DB, MAX_GAIN_DB);
        if actual < SILENT_DB {
            gain = gain.min(0.0);
        }
        *g = 10f32.powf(gain / 20.0);
        if let Some(d) = slopes.as_deref_mut().and_then(|s| s.get_mut(i)) {
            *d = if gain == wanted && gain.abs() < MAX_GAIN_DB {
                -*g / (2.0 * (p + 1e-20))
            } else {
                0.0
            };
        }
    }
}

/// The output stage that plays an envelope (see the module doc): samples in, the same
/// samples shaped out [`WINDOW`] samples later. Sized in [`Shaper::new`]; nothing is
/// allocated after.
#[derive(Debug, Clone)]
pub struct Shaper {
    bands: Bands,
    hop: usize,
    /// The last [`WINDOW`] inputs, a ring starting at `at`.
    input: Vec<f32>,
    at: usize,
    /// Output samples `[t − WINDOW, t)` being overlap-added.
    acc: Vec<f32>,
    /// The [`HOP`] finished samples played during the next [`HOP`] inputs.
    ready: Vec<f32>,
    /// The current frame's envelope and the previous one's, with the current's index.
    current: Vec<f32>,
    previous: Vec<f32>,
    index: usize,
    /// Scratch.
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
    gains: Vec<f32>,
    /// Samples taken in since the note's start.
    t: u64,
}

impl Shaper {
    /// A shaper of `bands` for frames of `hop` samples, at rest.
    pub fn new(bands: &Bands, hop: usize) -> Self {
        let b = bands.len();
        Self {
            bands: bands.clone(),
            hop: hop.max(1),
            input: vec![0.0; WINDOW],
            at: 0,
            acc: vec![0.0; WINDOW],
            ready: vec![0.0; HOP],
            current: vec![0.0; b],
            previous: vec![0.0; b],
            index: 0,
            frame: vec![0.0; WINDOW],
            spectrum: vec![Complex::new(0.0, 0.0); BINS],
            scratch: bands.scratch(),
            power: vec![0.0; b],
            gains: vec![0.0; b],
            t: 0,
        }
    }

    /// Bands of the envelope it plays.
    pub fn bands(&self) -> usize {
        self.current.len()
    }

    /// Back to rest, for a new note.
    pub fn reset(&mut self) {
        self.input.fill(0.0);
        self.acc.fill(0.0);
        self.ready.fill(0.0);
        self.current.fill(0.0);
        self.previous.fill(0.0);
        (self.at, self.index, self.t) = (0, 0, 0);
    }

    /// Frame `index`'s envelope (`bands` values), given when its first sample is due
    /// (frames in order from 0; a frame given again replaces itself).
    pub fn set_frame(&mut self, index: usize, envelope: &[f32]) {
        if index != self.index {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.index = index;
        }
        for (o, &e) in self.current.iter_mut().zip(envelope) {
            *o = e;
        }
    }

    /// Shapes `samples` in place: each is replaced by the output [`WINDOW`] samples before
    /// it (silence at first).
    pub fn process(&mut self, samples: &mut [f32]) {
        for s in samples.iter_mut() {
            let k = (self.t % HOP as u64) as usize;
            let x = *s;
            *s = self.ready[k];
            self.input[self.at] = x;
            self.at = (self.at + 1) % WINDOW;
            self.t += 1;
            if self.t.is_multiple_of(HOP as u64) {
                self.analyse_and_add();
            }
        }
    }

    fn analyse_and_add(&mut self) {
        for (i, x) in self.frame.iter_mut().enumerate() {
            *x = self.input[(self.at + i) % WINDOW];
        }
        self.bands.analyse(
            &mut self.frame,
            &mut self.spectrum,
            &mut self.scratch,
            &mut self.power,
        );
        let target = if frame_of(self.t, self.hop) < self.index && self.index > 0 {
            &self.previous
        } else {
            &self.current
        };
        band_gains(&self.power, target, &mut self.gains, None);
        self.bands
            .refine(&self.spectrum, &self.power, target, &mut self.gains);
        for (k, c) in self.spectrum.iter_mut().enumerate() {
            *c *= self.bands.bin_gain(&self.gains, k) / (WINDOW as f32 * OLA_GAIN);
        }
        self.bands
            .resynthesise(&mut self.spectrum, &mut self.scratch, &mut self.frame);
        for (a, &y) in self.acc.iter_mut().zip(&self.frame) {
            *a += y;
        }
        self.ready.copy_from_slice(&self.acc[..HOP]);
        self.acc.copy_within(HOP.., 0);
        self.acc[WINDOW - HOP..].fill(0.0);
    }
}

/// Shapes a whole note `audio` (of `envelope.len() / bands` frames of `hop` samples, the
/// last held past its end) in place, with no delay: what a [`Shaper`] plays, the first
/// [`WINDOW`] output samples dropped and the input followed by [`WINDOW`] of silence.
pub fn shape_note(bands: &Bands, audio: &mut [f32], envelope: &[f32], hop: usize) {
    let b = bands.len();
    let frames = envelope.len() / b;
    if frames == 0 || audio.is_empty() {
        return;
    }
    let mut shaper = Shaper::new(bands, hop);
    let mut buf = vec![0f32; audio.len() + WINDOW];
    buf[..audio.len()].copy_from_slice(audio);
    let mut t = 0;
    while t < buf.len() {
        let f = t / hop;
        shaper.set_frame(
            f,
            &envelope[f.min(frames - 1) * b..(f.min(frames - 1) + 1) * b],
        );
        let end = ((f + 1) * hop).min(buf.len());
        shaper.process(&mut buf[t..end]);
        t = end;
    }
    audio.copy_from_slice(&buf[WINDOW..]);
}

/// An embedding `[frames, bottleneck + bands]` split into what the flows read
/// `[frames, bottleneck]` and the envelope `[frames, bands]` (empty with no bands).
pub fn split_frames(encoding: &[f32], bottleneck: usize, bands: usize) -> (Vec<f32>, Vec<f32>) {
    if bands == 0 {
        return (encoding.to_vec(), Vec::new());
    }
    let width = bottleneck + bands;
    let frames = encoding.len() / width;
    let (mut flows, mut envelope) = (
        Vec::with_capacity(frames * bottleneck),
        Vec::with_capacity(frames * bands),
    );
    for frame in encoding.chunks_exact(width) {
        flows.extend_from_slice(&frame[..bottleneck]);
        envelope.extend_from_slice(&frame[bottleneck..]);
    }
    (flows, envelope)
}
