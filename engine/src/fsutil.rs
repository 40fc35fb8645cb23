//! Writing files safely: a temporary file beside the target, renamed into place, so a
//! failed or interrupted write leaves nothing behind and never a half-written file.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Whether an existing file may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    Never,
    Allowed,
}

/// Writes `path` atomically with what `write` puts into the temporary file.
pub fn write_atomic(
    path: &Path,
    overwrite: Overwrite,
    write: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let write_err = |error| Error::Write {
        path: path.to_path_buf(),
        error,
    };
    if overwrite == Overwrite::Never && path.exists() {
        return Err(Error::Exists(path.to_path_buf()));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".timbrel-").suffix(".tmp");
    // Temporary files are private (0600); what we write is an ordinary file for the user.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder.tempfile_in(dir).map_err(write_err)?;
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut out).map_err(write_err)?;
        out.flush().map_err(write_err)?;
    }
    match overwrite {
        Overwrite::Allowed => tmp.persist(path).map(|_| ()),
        // No clobbering even if the file appeared while we were writing.
        Overwrite::Never => tmp.persist_noclobber(path).map(|_| ()),
    }
    .map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Exists(path.to_path_buf())
        } else {
            write_err(e.error)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_never_clobbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_atomic(&path, Overwrite::Never, |w| w.write_all(b"one")).unwrap();
        let err = write_atomic(&path, Overwrite::Never, |w| w.write_all(b"two")).unwrap_err();
        assert!(matches!(err, Error::Exists(_)), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        // A failing writer leaves the old file and no temporary behind.
        let failed = write_atomic(&path, Overwrite::Allowed, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomic(&path, Overwrite::Allowed, |w| w.write_all(b"two")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
    }
}
