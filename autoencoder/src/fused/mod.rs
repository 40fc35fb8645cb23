//! The hand-written training pieces both fused steps (the WaveNet autoencoder's,
//! [`crate::wavenet::fused`], and the student's, [`crate::student::fused`]) are made of:
//! where each variable lives in the flat parameter vector ([`index`]), products on
//! strided views and convolution taps with their gradients ([`linalg`]), vectorised
//! gates, ReLUs and the softmax ([`pointwise`]), a stack of gated residual layers both
//! ways ([`layers`]), the NSynth encoder both ways ([`encoder`]); and here the crop
//! bookkeeping: the batch's checks, crops dealt to threads, gradients added in crop order.

pub(crate) mod encoder;
pub(crate) mod index;
pub(crate) mod layers;
pub(crate) mod linalg;
pub(crate) mod pointwise;

use crate::cpu::Isa;
use crate::{Error, Result};

/// What a pass over a crop reads: the kernels to use, the sizes `D`, where each variable
/// lives `I`, and the parameters.
pub(crate) struct Pass<'a, D, I> {
    pub isa: Isa,
    pub dims: &'a D,
    pub index: &'a I,
    pub params: &'a [f32],
}

impl<D, I> Clone for Pass<'_, D, I> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D, I> Copy for Pass<'_, D, I> {}

/// Checks that a batch is `batch` crops of `time` samples, a positive multiple of `hop`.
pub(crate) fn check_crops(batch: usize, time: usize, hop: usize) -> Result<()> {
    if batch == 0 || time < 2 || !time.is_multiple_of(hop) {
        return Err(Error::Shape(format!(
            "a training batch needs crops of a positive multiple of the hop length {hop} \
             samples, got {batch} crops of {time}"
        )));
    }
    Ok(())
}

/// Checks that `what` has the `want` values the batch needs.
pub(crate) fn check_len(what: &str, len: usize, want: usize) -> Result<()> {
    if len == want {
        Ok(())
    } else {
        Err(Error::Shape(format!(
            "{what} has {len} values, the batch needs {want}"
        )))
    }
}

/// Runs `job(state_j, i, crop_i)` for every crop, dealt round-robin: crop `i` on worker
/// `i % states.len()` with that worker's `state` (its buffers). The results come back
/// in crop order, so nothing depends on which thread finished first.
pub(crate) fn for_each_crop<C: Send, S: Send, R: Send>(
    crops: &mut [C],
    states: &mut [S],
    job: impl Fn(&mut S, usize, &mut C) -> R + Sync,
) -> Result<Vec<R>> {
    let threads = states.len().max(1);
    let mut shares: Vec<Vec<(usize, &mut C)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, c) in crops.iter_mut().enumerate() {
        shares[i % threads].push((i, c));
    }
    let job = &job;
    let done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .zip(states.iter_mut())
            .filter(|(share, _)| !share.is_empty())
            .map(|(share, state)| {
                scope.spawn(move || {
                    share
                        .into_iter()
                        .map(|(i, c)| (i, job(state, i, c)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| Error::Panicked("a training worker")))
            .collect::<Result<Vec<_>>>()
            .map(|v| v.into_iter().flatten().collect())
    })?;
    let mut out: Vec<Option<R>> = (0..crops.len()).map(|_| None).collect();
    for (i, r) in done {
        out[i] = Some(r);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Adds each of `rest` into `total`, in order: the crops' gradients summed the same way
/// whatever the threads did.
pub(crate) fn add_in_order<'a>(total: &mut [f32], rest: impl Iterator<Item = &'a [f32]>) {
    for g in rest {
        for (a, &v) in total.iter_mut().zip(g) {
            *a += v;
        }
    }
}
