//! The excitation of whole notes as a tensor, `[notes, len, channels]`: what training,
//! evaluation and a student's measured sub-partials give a model with a pitch.

use autoencoder::WaveNetAutoencoder;
use candle_core::{Device, Tensor};

use crate::error::Result;

/// The excitation `[notes, len, 2K]` of notes held at `f0_hz` (one per note, Hz; 0 =
/// unpitched), each from sample `offsets[i]` of its note (empty: all from the start);
/// `None` when the model has no excitation or no f0 is given.
pub fn excitation_tensor(
    model: &WaveNetAutoencoder,
    f0_hz: Option<&[f32]>,
    len: usize,
    offsets: &[usize],
) -> Result<Option<Tensor>> {
    let k = model.config().excitation_harmonics;
    excitation_of(k, model.device(), f0_hz, len, offsets)
}

/// [`excitation_tensor`] for `k` harmonics on `device` (any family).
pub fn excitation_of(
    k: usize,
    device: &Device,
    f0_hz: Option<&[f32]>,
    len: usize,
    offsets: &[usize],
) -> Result<Option<Tensor>> {
    excitation_partials_of((k, 0), device, f0_hz, len, offsets)
}

/// [`excitation_of`] with `(harmonics, subpartials)`: the `2K + 2N` channels of
/// [`autoencoder::excitation::excitation_partials`] (a student with sub-partials).
pub fn excitation_partials_of(
    (k, n): (usize, usize),
    device: &Device,
    f0_hz: Option<&[f32]>,
    len: usize,
    offsets: &[usize],
) -> Result<Option<Tensor>> {
    use autoencoder::excitation::{Oscillator, excitation_partials};
    let Some(f0_hz) = f0_hz.filter(|_| k > 0) else {
        return Ok(None);
    };
    let channels = 2 * (k + n);
    let mut all = Vec::with_capacity(f0_hz.len() * len * channels);
    for (i, &hz) in f0_hz.iter().enumerate() {
        let start = Oscillator::at_offset(hz, offsets.get(i).copied().unwrap_or(0));
        all.extend(excitation_partials(&vec![hz; len], k, n, start));
    }
    let t = Tensor::from_vec(all, (f0_hz.len(), len, channels), device)
        .map_err(autoencoder::Error::from)?;
    Ok(Some(t))
}
