//! Encoding notes into embeddings, from the cache where it has them.

use candle_core::Device;

use super::{Cache, Embedding, Engine};
use crate::error::{Error, Result};

/// An encoded note and whether the cache had it.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub embedding: Embedding,
    pub cached: bool,
}

impl Engine {
    /// Encodes 16 kHz notes (zero-padded to whole frames), from the cache where it has
    /// them. Notes of equal length are encoded together. `pitches`: each note's own pitch
    /// (MIDI; `None`: unpitched), or empty for all unpitched; a student with measured
    /// sub-partials measures them at it.
    pub fn encode(&self, notes: &[&[f32]], pitches: &[Option<u8>]) -> Result<Vec<Encoded>> {
        let hop = self.hop();
        let channels = self.bottleneck();
        if !pitches.is_empty() && pitches.len() != notes.len() {
            return Err(Error::Compute(autoencoder::Error::Shape(format!(
                "{} pitches for {} notes",
                pitches.len(),
                notes.len()
            ))));
        }
        let pitch = |i: usize| pitches.get(i).copied().flatten();
        let measures = self.measures_pitch();
        let padded: Vec<Vec<f32>> = notes
            .iter()
            .map(|n| {
                let mut n = n.to_vec();
                n.resize(n.len().div_ceil(hop).max(1) * hop, 0.0);
                n
            })
            .collect();
        // What a note encodes to depends on its pitch where the frames measure at it.
        let keys: Vec<String> = padded
            .iter()
            .enumerate()
            .map(|(i, n)| match (measures, pitch(i)) {
                (true, Some(p)) => Cache::key(&format!("{}@{p}", self.identity), n),
                (true, None) => Cache::key(&format!("{}@-", self.identity), n),
                (false, _) => Cache::key(&self.identity, n),
            })
            .collect();
        let mut out: Vec<Option<Encoded>> = keys
            .iter()
            .map(|k| {
                self.cache
                    .as_ref()
                    .and_then(|c| c.get(k, channels))
                    .map(|embedding| Encoded {
                        embedding,
                        cached: true,
                    })
            })
            .collect();
        // The misses, grouped by length, at most 8 at a time (bounded memory).
        let mut misses: Vec<usize> = (0..notes.len()).filter(|&i| out[i].is_none()).collect();
        misses.sort_by_key(|&i| padded[i].len());
        for group in misses.chunk_by(|&a, &b| padded[a].len() == padded[b].len()) {
            for chunk in group.chunks(8) {
                let len = padded[chunk[0]].len();
                let cut: Vec<&[f32]> = chunk.iter().map(|&i| padded[i].as_slice()).collect();
                let f0: Vec<f32> = chunk
                    .iter()
                    .map(|&i| {
                        pitch(i).map_or(0.0, |p| autoencoder::excitation::midi_to_hz(f32::from(p)))
                    })
                    .collect();
                let z = self.family.encode(&cut, &f0)?;
                let z: Vec<f32> = z
                    .to_device(&Device::Cpu)
                    .and_then(|z| z.flatten_all())
                    .and_then(|z| z.to_vec1())
                    .map_err(autoencoder::Error::from)?;
                let frames = len / hop;
                for (&i, data) in chunk.iter().zip(z.chunks_exact(frames * channels)) {
                    let embedding = Embedding {
                        frames,
                        channels,
                        data: data.to_vec(),
                    };
                    if let Some(cache) = &self.cache {
                        // A cache that cannot be written costs time later, not this job.
                        let _ = cache.put(&keys[i], &embedding);
                    }
                    out[i] = Some(Encoded {
                        embedding,
                        cached: false,
                    });
                }
            }
        }
        out.into_iter()
            .map(|e| {
                e.ok_or(Error::Compute(autoencoder::Error::Shape(
                    "a note was not encoded".into(),
                )))
            })
            .collect()
    }
}
