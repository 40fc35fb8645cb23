//! The encode cache: embeddings on disk, keyed by the audio's content and the model's
//! identity, so re-encoding the same note with the same model is free, and a changed
//! file or model is encoded again.
//!
//! A key is the SHA-256 of the model identity and the 16 kHz samples the encoder sees
//! (after decoding, mixing, resampling and any pitch shift), so the key follows the
//! content, not the file name or date. Entries are `.npy` files written atomically; a
//! damaged entry is treated as a miss and replaced.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::blend::Embedding;
use super::npy;
use crate::fsutil::Overwrite;

/// Where embeddings are kept.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$TIMBREL_CACHE_DIR`, else `$XDG_CACHE_HOME/timbrel/embeddings`, else
    /// `~/.cache/timbrel/embeddings`; `None` when none can be found.
    pub fn user_default() -> Option<Self> {
        if let Some(dir) = std::env::var_os("TIMBREL_CACHE_DIR") {
            return Some(Self::new(dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(Self::new(base.join("timbrel").join("embeddings")))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of `samples` encoded by the model `model_id`.
    pub fn key(model_id: &str, samples: &[f32]) -> String {
        let mut hash = Sha256::new();
        hash.update(b"timbrel-embedding-v1\0");
        hash.update(model_id.as_bytes());
        hash.update(b"\0");
        hash.update((samples.len() as u64).to_le_bytes());
        for s in samples {
            hash.update(s.to_le_bytes());
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.npy"))
    }

    /// The cached embedding for `key`, if there is a readable one of `channels` channels.
    pub fn get(&self, key: &str, channels: usize) -> Option<Embedding> {
        let (data, frames, c) = npy::read(&self.path(key)).ok()?;
        (c == channels && frames > 0).then_some(Embedding {
            frames,
            channels,
            data,
        })
    }

    /// Stores `embedding` under `key`. Failing to cache is not an error for the user's
    /// job (a read-only home, a full disk): the reason is returned for a warning.
    pub fn put(&self, key: &str, embedding: &Embedding) -> crate::Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|error| crate::Error::Write {
            path: self.dir.clone(),
            error,
        })?;
        npy::write(
            &self.path(key),
            &embedding.data,
            embedding.frames,
            embedding.channels,
            Overwrite::Allowed,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_content_and_model() {
        let a = Cache::key("m1", &[0.1, 0.2]);
        assert_eq!(a, Cache::key("m1", &[0.1, 0.2]));
        assert_ne!(a, Cache::key("m2", &[0.1, 0.2]));
        assert_ne!(a, Cache::key("m1", &[0.1, 0.25]));
        assert_ne!(a, Cache::key("m1", &[0.1, 0.2, 0.0]));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn stores_and_finds() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        let e = Embedding {
            frames: 2,
            channels: 3,
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        assert!(cache.get("k", 3).is_none());
        cache.put("k", &e).unwrap();
        assert_eq!(cache.get("k", 3), Some(e.clone()));
        assert!(cache.get("k", 16).is_none(), "wrong width is a miss");
        std::fs::write(cache.dir().join("k.npy"), b"damaged").unwrap();
        assert!(cache.get("k", 3).is_none());
        cache.put("k", &e).unwrap();
        assert_eq!(cache.get("k", 3), Some(e));
    }
}
