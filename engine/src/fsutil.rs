//! Writing files safely: a temporary file beside the target, flushed to the disk, renamed
//! into place and the folder's entry flushed too, so a failed, interrupted or powered-off
//! write leaves the old file or the new one, never a half-written or empty one; and the
//! checks that keep a job from writing over what it reads.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};

/// Whether an existing file may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    Never,
    Allowed,
}

/// Writes `path` atomically and durably with what `write` puts into the temporary file:
/// temporary file, `fsync` of the file, rename, `fsync` of the folder.
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
    let dir = parent_of(path);
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
    // The data reaches the disk before the name does: after a power cut the name points
    // at the whole new file or at the old one.
    tmp.as_file().sync_all().map_err(write_err)?;
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
    })?;
    sync_dir(dir)
}

/// The folder a file is written in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Flushes a folder's entries (a rename or a removal in it) to the disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    // Windows cannot open a folder as a file; its renames are journaled by NTFS.
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|error| Error::Write {
            path: dir.to_path_buf(),
            error,
        })?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `tensors` as a safetensors file through [`write_atomic`]: every checkpoint,
/// weights file and fixture goes this way (tensors on a device are copied to the host).
pub fn write_tensors(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    overwrite: Overwrite,
) -> Result<()> {
    let mut host: Vec<(&String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| {
            // host: a file is written from host memory.
            Ok((
                k,
                t.to_device(&Device::Cpu)
                    .map_err(autoencoder::Error::from)?,
            ))
        })
        .collect::<Result<_>>()?;
    // A fixed order, so the same tensors make the same bytes.
    host.sort_by(|a, b| a.0.cmp(b.0));
    let bytes = safetensors::serialize(host.iter().map(|(k, t)| (k.as_str(), t)), None)
        .map_err(|e| Error::invalid(path, format!("cannot serialise tensors ({e})")))?;
    write_atomic(path, overwrite, |out| out.write_all(&bytes))
}

/// Refuses an output that is one of the inputs (the same file, by device and inode where
/// there are inodes, by its canonical path elsewhere), whatever may be overwritten: a
/// job never writes over what it reads. An output that does not exist yet is no input.
pub fn check_not_input<P: AsRef<Path>>(output: &Path, inputs: &[P]) -> Result<()> {
    let Ok(out_meta) = std::fs::metadata(output) else {
        return Ok(());
    };
    for input in inputs {
        let input = input.as_ref();
        let Ok(in_meta) = std::fs::metadata(input) else {
            continue;
        };
        if same_file(output, &out_meta, input, &in_meta) {
            return Err(Error::OutputIsInput {
                output: output.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(_: &Path, a: &std::fs::Metadata, _: &Path, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &Path, _: &std::fs::Metadata, b: &Path, _: &std::fs::Metadata) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Removes the files `names` in `dir` that are there (a missing one is not an error),
/// then `dir` itself if that left it empty: how Timbrel clears a folder it made without
/// touching anything it did not write.
pub fn remove_own(dir: &Path, names: &[PathBuf]) -> Result<()> {
    remove_files(dir, names)?;
    remove_dir_if_empty(dir)
}

/// Removes the files `names` in `dir` that are there (a missing one is not an error);
/// `dir` itself stays.
pub fn remove_files(dir: &Path, names: &[impl AsRef<Path>]) -> Result<()> {
    for name in names {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::Write { path, error }),
        }
    }
    Ok(())
}

/// Removes `dir` if it is empty; a folder that holds anything stays.
pub fn remove_dir_if_empty(dir: &Path) -> Result<()> {
    let empty = std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_none())
        .unwrap_or(false);
    if empty {
        std::fs::remove_dir(dir).map_err(|error| Error::Write {
            path: dir.to_path_buf(),
            error,
        })?;
        sync_dir(parent_of(dir))?;
    }
    Ok(())
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

    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.wav");
        let other = dir.path().join("other.wav");
        std::fs::write(&input, b"note").unwrap();
        std::fs::write(&other, b"note").unwrap();
        let check = |out: &Path| check_not_input(out, &[other.as_path(), input.as_path()]);
        let err = check(&input).unwrap_err();
        assert!(matches!(err, Error::OutputIsInput { .. }), "{err}");
        // The same file by another name: a path through `..`, a hard link, a symlink.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(check(&sub.join("..").join("in.wav")).is_err());
        let linked = dir.path().join("hard.wav");
        std::fs::hard_link(&input, &linked).unwrap();
        assert!(check(&linked).is_err());
        #[cfg(unix)]
        {
            let sym = dir.path().join("sym.wav");
            std::os::unix::fs::symlink(&input, &sym).unwrap();
            assert!(check(&sym).is_err());
        }
        // Another file with the same contents, and an output not written yet, are fine.
        check_not_input(&other, &[input.as_path()]).unwrap();
        check(&dir.path().join("new.wav")).unwrap();
    }

    #[test]
    fn remove_own_keeps_what_it_did_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        std::fs::write(work.join("ours.txt"), b"1").unwrap();
        std::fs::write(work.join("theirs.txt"), b"2").unwrap();
        remove_own(&work, &["ours.txt".into(), "missing.txt".into()]).unwrap();
        assert!(!work.join("ours.txt").exists());
        assert_eq!(std::fs::read(work.join("theirs.txt")).unwrap(), b"2");
        remove_own(&work, &["theirs.txt".into()]).unwrap();
        assert!(!work.exists(), "an emptied folder goes");
    }

    #[test]
    fn tensors_are_written_atomically_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let t = Tensor::from_vec(vec![1f32, 2.0, 3.0], 3, &Device::Cpu).unwrap();
        let tensors = HashMap::from([("a/W".to_string(), t)]);
        write_tensors(&path, &tensors, Overwrite::Never).unwrap();
        let err = write_tensors(&path, &tensors, Overwrite::Never).unwrap_err();
        assert!(matches!(err, Error::Exists(_)), "{err}");
        let back = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(back["a/W"].to_vec1::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
