//! The multi-resolution spectral loss: magnitudes of short-time Fourier transforms at
//! several sizes, compared linearly (spectral convergence) and in log (log magnitude), as
//! neural source-filter models and DDSP train with. The transforms are products with
//! windowed DFT matrices, so candle differentiates them like any other layer.

use candle_core::{D, DType, Device, Tensor};

use crate::{Error, Result};

/// FFT sizes of the loss (hop: a quarter of each).
pub const SIZES: [usize; 4] = [2048, 1024, 512, 256];

/// Floor under magnitudes before their log: −96 dB under a full-scale sine's bin at size 256,
/// −114 dB at 2048. Lower, and the log term is dominated by driving silent bins towards
/// nothing, which no recording has.
const EPS: f64 = 1e-3;

/// Windowed DFT matrices of one size.
#[derive(Debug, Clone)]
pub struct Stft {
    size: usize,
    hop: usize,
    /// `[size, bins]`: Hann window × cos and × sin.
    cos: Tensor,
    sin: Tensor,
}

impl Stft {
    pub fn new(size: usize, device: &Device) -> Result<Self> {
        if size < 4 || !size.is_multiple_of(4) {
            return Err(Error::Config(format!(
                "an STFT size must be a positive multiple of 4, got {size}"
            )));
        }
        let bins = size / 2 + 1;
        let (mut cos, mut sin) = (
            Vec::with_capacity(size * bins),
            Vec::with_capacity(size * bins),
        );
        for n in 0..size {
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / size as f64).cos();
            for k in 0..bins {
                let phase = std::f64::consts::TAU * (n * k % size) as f64 / size as f64;
                cos.push((w * phase.cos()) as f32);
                sin.push((w * phase.sin()) as f32);
            }
        }
        Ok(Self {
            size,
            hop: size / 4,
            cos: Tensor::from_vec(cos, (size, bins), device)?,
            sin: Tensor::from_vec(sin, (size, bins), device)?,
        })
    }

    /// Magnitudes `[batch, frames, bins]` of `x` `[batch, time]` (frames every hop, the
    /// last partial hop dropped; at least one frame: shorter input is zero-padded).
    pub fn magnitude(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, time) = x.dims2()?;
        let hops = time.div_ceil(self.hop).max(4);
        let x = x.pad_with_zeros(1, 0, hops * self.hop - time)?;
        // [batch, hops, hop]: a frame is 4 consecutive hops.
        let rows = x.reshape((batch, hops, self.hop))?;
        let frames = hops - 3;
        let parts: Vec<Tensor> = (0..4)
            .map(|i| rows.narrow(1, i, frames))
            .collect::<candle_core::Result<_>>()?;
        let framed = Tensor::cat(&parts, 2)?.reshape((batch * frames, self.size))?;
        let re = framed.matmul(&self.cos)?;
        let im = framed.matmul(&self.sin)?;
        let power = ((re.sqr()? + im.sqr()?)? + EPS * EPS)?;
        Ok(power.sqrt()?.reshape((batch, frames, ()))?)
    }
}

/// The loss at every size of [`SIZES`] (or `sizes`): per size, spectral convergence
/// `‖|X| − |Y|‖_F / ‖|Y|‖_F` plus the mean absolute difference of log magnitudes, summed
/// over sizes. `candidate` and `target` are `[batch, time]`.
#[derive(Debug, Clone)]
pub struct MultiResolution {
    stfts: Vec<Stft>,
}

impl MultiResolution {
    pub fn new(sizes: &[usize], device: &Device) -> Result<Self> {
        Ok(Self {
            stfts: sizes
                .iter()
                .map(|&n| Stft::new(n, device))
                .collect::<Result<_>>()?,
        })
    }

    pub fn loss(&self, candidate: &Tensor, target: &Tensor) -> Result<Tensor> {
        if candidate.dims() != target.dims() {
            return Err(Error::Shape(format!(
                "spectral loss of {:?} against {:?}",
                candidate.dims(),
                target.dims()
            )));
        }
        let mut total: Option<Tensor> = None;
        for stft in &self.stfts {
            let (a, b) = (stft.magnitude(candidate)?, stft.magnitude(target)?);
            let convergence = ((&a - &b)?.sqr()?.sum_all()?.sqrt()?
                / b.sqr()?.sum_all()?.sqrt()?.affine(1.0, EPS)?)?;
            let log = (a.log()? - b.log()?)?.abs()?.mean_all()?;
            let term = (convergence + log)?;
            total = Some(match total {
                Some(t) => (t + term)?,
                None => term,
            });
        }
        total.ok_or_else(|| Error::Config("a spectral loss needs at least one size".into()))
    }
}

/// Mean over time of each bin's power, `[batch, bins]`: the Parallel WaveNet paper's
/// power loss compares these (squared difference), which keeps a student from whispering.
pub fn average_power(stft: &Stft, x: &Tensor) -> Result<Tensor> {
    Ok(stft
        .magnitude(x)?
        .sqr()?
        .mean(D::Minus2)?
        .to_dtype(DType::F32)?)
}

/// FFT size of the power loss (hop 256: 16 ms).
pub const POWER_SIZE: usize = 1024;

/// The paper's power loss: the squared difference of each bin's power averaged over time
/// (see [`average_power`]), divided by the sum of both spectra's squared powers, so a note
/// counts the same whatever its loudness and the loss stays in [0, 2]: 0 for the same
/// spectrum, 1 for silence against any note (and for any sound against silence). Mean over
/// the batch; `candidate` and `target` `[batch, time]`.
pub fn power_loss(stft: &Stft, candidate: &Tensor, target: &Tensor) -> Result<Tensor> {
    if candidate.dims() != target.dims() {
        return Err(Error::Shape(format!(
            "power loss of {:?} against {:?}",
            candidate.dims(),
            target.dims()
        )));
    }
    let a = average_power(stft, candidate)?;
    let b = average_power(stft, target)?;
    let err = (&a - &b)?.sqr()?.sum(D::Minus1)?;
    let norm = (a.sqr()?.sum(D::Minus1)? + b.sqr()?.sum(D::Minus1)?)?;
    Ok((err / norm)?.mean_all()?)
}
