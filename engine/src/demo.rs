//! The demo notes embedded in the binary (`assets/demo`, see its README): four
//! instruments at three pitches, so the app has something to blend on first start.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::{Overwrite, write_atomic};

macro_rules! note {
    ($pack:literal, $file:literal) => {
        (
            $pack,
            $file,
            include_bytes!(concat!("../../assets/demo/", $pack, "/", $file)) as &[u8],
        )
    };
}

/// (pack, file, bytes) of every demo note.
pub const NOTES: [(&str, &str, &[u8]); 12] = [
    note!("flute", "flute_synthetic_073-048-100.wav"),
    note!("flute", "flute_synthetic_073-060-100.wav"),
    note!("flute", "flute_synthetic_073-072-100.wav"),
    note!("piano", "keyboard_synthetic_000-048-100.wav"),
    note!("piano", "keyboard_synthetic_000-060-100.wav"),
    note!("piano", "keyboard_synthetic_000-072-100.wav"),
    note!("strings", "string_synthetic_048-048-100.wav"),
    note!("strings", "string_synthetic_048-060-100.wav"),
    note!("strings", "string_synthetic_048-072-100.wav"),
    note!("trumpet", "brass_synthetic_056-048-100.wav"),
    note!("trumpet", "brass_synthetic_056-060-100.wav"),
    note!("trumpet", "brass_synthetic_056-072-100.wav"),
];

/// The demo packs' names, in corner order (A, B, C, D).
pub const PACKS: [&str; 4] = ["flute", "piano", "strings", "trumpet"];

/// `$TIMBREL_DATA_DIR`, else `$XDG_DATA_HOME/timbrel`, else `~/.local/share/timbrel`.
pub fn data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TIMBREL_DATA_DIR") {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("timbrel"))
}

/// Writes the demo packs under `dir/demo/` (files already there are left alone) and
/// returns the pack folders in corner order.
pub fn install(dir: &Path) -> Result<Vec<PathBuf>> {
    let root = dir.join("demo");
    for (pack, file, bytes) in NOTES {
        let folder = root.join(pack);
        let path = folder.join(file);
        if path.exists() {
            continue;
        }
        std::fs::create_dir_all(&folder).map_err(|error| Error::Write {
            path: folder.clone(),
            error,
        })?;
        write_atomic(&path, Overwrite::Never, |out| {
            use std::io::Write;
            out.write_all(bytes)
        })?;
    }
    Ok(PACKS.iter().map(|p| root.join(p)).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn installs_readable_packs() {
        let dir = tempfile::tempdir().unwrap();
        let packs = super::install(dir.path()).unwrap();
        assert_eq!(packs.len(), 4);
        for pack in &packs {
            let scan = crate::pack::scan(pack, crate::audio::ReadOptions::default()).unwrap();
            assert_eq!(scan.notes().count(), 3, "{}", pack.display());
            assert_eq!(scan.nearest(60).unwrap().1.pitch.midi(), Some(60));
        }
        // A second install leaves what is there.
        assert_eq!(super::install(dir.path()).unwrap(), packs);
    }
}
