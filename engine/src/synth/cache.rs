//! The encode cache: embeddings on disk, keyed by the audio's content and the model's
//! identity, so re-encoding the same note with the same model is free, and a changed
//! file or model is encoded again.
//!
//! A key is the SHA-256 of the model identity and the 16 kHz samples the encoder sees
//! (after decoding, mixing, resampling and any pitch shift), so the key follows the
//! content, not the file name or date. Entries are `.npy` files written atomically; a
//! damaged entry is treated as a miss and replaced.
//!
//! The cache is bounded: after each insert the least recently used entries (by their
//! files' modification time, which a hit refreshes) go until the entries fit in the bound
//! (`TIMBREL_CACHE_MAX_MB`, default [`DEFAULT_MAX_MB`]). Only files named as entries
//! (64 hex digits + `.npy`) are ever counted or removed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::blend::Embedding;
use super::npy;
use crate::fsutil::Overwrite;

/// The bound when `TIMBREL_CACHE_MAX_MB` does not set one, in MB.
pub const DEFAULT_MAX_MB: u64 = 256;
/// The variable that sets the bound, in MB (10⁶ bytes).
pub const MAX_MB_VAR: &str = "TIMBREL_CACHE_MAX_MB";

/// Where embeddings are kept, and how many bytes of them at most.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

/// What the cache holds ([`Cache::info`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Info {
    pub dir: PathBuf,
    pub entries: usize,
    pub bytes: u64,
    pub max_bytes: u64,
}

/// An entry on disk.
struct Entry {
    path: PathBuf,
    bytes: u64,
    used: SystemTime,
}

impl Cache {
    /// A cache in `dir` bounded by `TIMBREL_CACHE_MAX_MB` (or [`DEFAULT_MAX_MB`]).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: max_bytes_from_env(),
        }
    }

    /// The same cache with its bound set to `max_bytes`.
    #[must_use]
    pub fn with_max_bytes(self, max_bytes: u64) -> Self {
        Self { max_bytes, ..self }
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

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The key of `samples` encoded by the model `model_id`.
    pub fn key(model_id: &str, samples: &[f32]) -> String {
        let mut hash = Sha256::new();
        // v2: a student's measured envelope is taken after the DC blocker (session 19).
        hash.update(b"timbrel-embedding-v2\0");
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

    /// The cached embedding for `key`, if there is a readable one of `channels` channels;
    /// a hit marks the entry as just used.
    pub fn get(&self, key: &str, channels: usize) -> Option<Embedding> {
        let path = self.path(key);
        let (data, frames, c) = npy::read(&path).ok()?;
        let hit = (c == channels && frames > 0).then_some(Embedding {
            frames,
            channels,
            data,
        });
        if hit.is_some() {
            // Failing to mark it (a read-only cache) only makes it look older.
            let _ = std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(SystemTime::now()));
        }
        hit
    }

    /// Stores `embedding` under `key`, then evicts the least recently used entries past
    /// the bound. Failing to cache is not an error for the user's job (a read-only home,
    /// a full disk): the reason is returned for a warning.
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
        )?;
        self.prune()
    }

    /// Removes the least recently used entries until the rest fit in the bound.
    pub fn prune(&self) -> crate::Result<()> {
        let mut entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        if total <= self.max_bytes {
            return Ok(());
        }
        entries.sort_by(|a, b| a.used.cmp(&b.used).then_with(|| a.path.cmp(&b.path)));
        for entry in entries {
            if total <= self.max_bytes {
                break;
            }
            remove(&entry.path)?;
            total -= entry.bytes;
        }
        Ok(())
    }

    /// Where the cache is, how many entries and bytes it holds, and its bound.
    pub fn info(&self) -> crate::Result<Info> {
        let entries = self.entries()?;
        Ok(Info {
            dir: self.dir.clone(),
            entries: entries.len(),
            bytes: entries.iter().map(|e| e.bytes).sum(),
            max_bytes: self.max_bytes,
        })
    }

    /// Removes every entry (only files named as entries: anything else in the folder
    /// stays); returns what was removed.
    pub fn clear(&self) -> crate::Result<Info> {
        let entries = self.entries()?;
        for entry in &entries {
            remove(&entry.path)?;
        }
        Ok(Info {
            dir: self.dir.clone(),
            entries: entries.len(),
            bytes: entries.iter().map(|e| e.bytes).sum(),
            max_bytes: self.max_bytes,
        })
    }

    /// The entries on disk (none where the folder is not there yet).
    fn entries(&self) -> crate::Result<Vec<Entry>> {
        let read = match std::fs::read_dir(&self.dir) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => {
                return Err(crate::Error::Read {
                    path: self.dir.clone(),
                    error,
                });
            }
        };
        Ok(read
            .flatten()
            .filter(|e| is_entry_name(&e.file_name().to_string_lossy()))
            .filter_map(|e| {
                let meta = e.metadata().ok().filter(std::fs::Metadata::is_file)?;
                Some(Entry {
                    path: e.path(),
                    bytes: meta.len(),
                    used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                })
            })
            .collect())
    }
}

/// `TIMBREL_CACHE_MAX_MB` in bytes; [`DEFAULT_MAX_MB`] when unset or not a number.
fn max_bytes_from_env() -> u64 {
    std::env::var(MAX_MB_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_MAX_MB)
        .saturating_mul(1_000_000)
}

/// A cache entry's file name: a key (64 lowercase hex digits) and `.npy`.
fn is_entry_name(name: &str) -> bool {
    name.strip_suffix(".npy").is_some_and(|key| {
        key.len() == 64
            && key
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn remove(path: &Path) -> crate::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        // Another process evicted it first.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(crate::Error::Write {
            path: path.to_path_buf(),
            error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn embedding(frames: usize) -> Embedding {
        Embedding {
            frames,
            channels: 3,
            data: (0..frames * 3).map(|i| i as f32).collect(),
        }
    }

    #[test]
    fn keys_follow_content_and_model() {
        let a = Cache::key("m1", &[0.1, 0.2]);
        assert_eq!(a, Cache::key("m1", &[0.1, 0.2]));
        assert_ne!(a, Cache::key("m2", &[0.1, 0.2]));
        assert_ne!(a, Cache::key("m1", &[0.1, 0.25]));
        assert_ne!(a, Cache::key("m1", &[0.1, 0.2, 0.0]));
        assert_eq!(a.len(), 64);
        assert!(is_entry_name(&format!("{a}.npy")));
    }

    #[test]
    fn stores_and_finds() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        let e = embedding(2);
        let k = Cache::key("m", &[1.0]);
        assert!(cache.get(&k, 3).is_none());
        cache.put(&k, &e).unwrap();
        assert_eq!(cache.get(&k, 3), Some(e.clone()));
        assert!(cache.get(&k, 16).is_none(), "wrong width is a miss");
        std::fs::write(cache.dir().join(format!("{k}.npy")), b"damaged").unwrap();
        assert!(cache.get(&k, 3).is_none());
        cache.put(&k, &e).unwrap();
        assert_eq!(cache.get(&k, 3), Some(e));
    }

    /// Sets an entry's last use `secs_ago` seconds back.
    fn age(cache: &Cache, key: &str, secs_ago: u64) {
        let when = SystemTime::now() - Duration::from_secs(secs_ago);
        std::fs::File::options()
            .write(true)
            .open(cache.path(key))
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    #[test]
    fn the_bound_evicts_the_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let probe = Cache::new(dir.path().join("probe"));
        let one = Cache::key("m", &[0.0]);
        probe.put(&one, &embedding(100)).unwrap();
        let size = probe.info().unwrap().bytes;
        // Room for three entries, not four.
        let cache = Cache::new(dir.path().join("c")).with_max_bytes(3 * size + size / 2);
        let keys: Vec<String> = (0..4).map(|i| Cache::key("m", &[i as f32])).collect();
        for (i, k) in keys[..3].iter().enumerate() {
            cache.put(k, &embedding(100)).unwrap();
            age(&cache, k, 100 - 10 * i as u64);
        }
        // Something of the user's in the folder is neither counted nor removed.
        std::fs::write(cache.dir().join("notes.txt"), vec![0u8; 10 * size as usize]).unwrap();
        assert_eq!(cache.info().unwrap().entries, 3);
        // The oldest is used now: the second oldest is then the least recently used.
        assert!(cache.get(&keys[0], 3).is_some());
        cache.put(&keys[3], &embedding(100)).unwrap();
        let info = cache.info().unwrap();
        assert_eq!((info.entries, info.bytes), (3, 3 * size));
        assert!(info.bytes <= info.max_bytes);
        assert!(
            cache.get(&keys[1], 3).is_none(),
            "the least recently used went"
        );
        for k in [&keys[0], &keys[2], &keys[3]] {
            assert!(cache.get(k, 3).is_some());
        }
        let cleared = cache.clear().unwrap();
        assert_eq!(cleared.entries, 3);
        assert_eq!(cache.info().unwrap().entries, 0);
        assert!(cache.dir().join("notes.txt").exists());
    }
}
