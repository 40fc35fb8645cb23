#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! Importing Magenta's own TensorFlow checkpoint of the parity fixture: the same
//! variables and hyper-parameters as the fixture's safetensors, and every way of
//! damaging a copy is one clear error with nothing written.

use std::path::{Path, PathBuf};

use candle_core::Device;
use engine::fsutil::Overwrite;
use engine::import_tf::{ImportOptions, import, resolve_prefix};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/magenta-tiny")
}

/// The fixture's dilation cycles (4 and 3: not Magenta's 10, so they must be given).
fn options() -> ImportOptions {
    ImportOptions {
        hop_length: 64,
        num_stages: Some(4),
        ae_num_stages: Some(3),
        ..Default::default()
    }
}

fn values(path: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let map = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let mut out: Vec<_> = map
        .into_iter()
        .map(|(k, t)| {
            (
                k,
                t.dims().to_vec(),
                t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn the_fixture_checkpoint_imports_to_the_fixture_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = resolve_prefix(&fixture().join("ckpt")).unwrap();
    assert!(prefix.ends_with("model.ckpt"));
    let out = tmp.path().join("imported");
    let imported = import(&prefix, &out, &options(), Overwrite::Never).unwrap();
    let (expected, _, _) = engine::golden::fixture_config(&fixture()).unwrap();
    assert_eq!(imported.config, expected);
    assert_eq!(
        values(&out.join("weights.safetensors")),
        values(&fixture().join("weights.safetensors"))
    );
    // Magenta's outputs with the imported weights: check-golden passes.
    let golden = tmp.path().join("golden");
    std::fs::create_dir_all(&golden).unwrap();
    for file in ["config.json", "io.safetensors"] {
        std::fs::copy(fixture().join(file), golden.join(file)).unwrap();
    }
    std::fs::copy(
        out.join("weights.safetensors"),
        golden.join("weights.safetensors"),
    )
    .unwrap();
    let report = engine::golden::check(&golden).unwrap();
    assert!(report.passes(), "{:?}", report.deviations);

    // The directory loads like any model; a second import without force is refused.
    engine::models::dir::load(&out, &Device::Cpu).unwrap();
    let err = import(&prefix, &out, &options(), Overwrite::Never)
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    // Without the stage counts (4 and 6 layers are not multiples of 10): told so.
    let err = import(
        &prefix,
        &tmp.path().join("x"),
        &ImportOptions::default(),
        Overwrite::Never,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("dilation cycle") && err.contains("decoder"),
        "{err}"
    );
    assert!(!tmp.path().join("x").exists());
}

/// A copy of the fixture's checkpoint in `dir`, its data and index as given.
fn damaged(dir: &Path, edit: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>)) -> PathBuf {
    let src = fixture().join("ckpt");
    let mut index = std::fs::read(src.join("model.ckpt.index")).unwrap();
    let mut data = std::fs::read(src.join("model.ckpt.data-00000-of-00001")).unwrap();
    edit(&mut index, &mut data);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("model.ckpt.index"), index).unwrap();
    std::fs::write(dir.join("model.ckpt.data-00000-of-00001"), data).unwrap();
    dir.join("model.ckpt")
}

/// A change to a copy's index and data.
type Edit = dyn FnOnce(&mut Vec<u8>, &mut Vec<u8>);

#[test]
fn every_kind_of_damage_is_one_clear_error_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Box<Edit>, &str)> = vec![
        (
            "truncated-data",
            Box::new(|_, d| d.truncate(d.len() / 2)),
            "truncated",
        ),
        (
            "flipped-data",
            Box::new(|_, d| {
                let n = d.len() / 3;
                d[n] ^= 0x40;
            }),
            "checksum mismatch",
        ),
        (
            "flipped-index",
            Box::new(|i, _| {
                i[40] ^= 0x01;
            }),
            "checksum mismatch in the index",
        ),
        (
            "not-an-index",
            Box::new(|i, _| i.truncate(i.len() - 3)),
            "not a TensorFlow V2 checkpoint",
        ),
    ];
    for (name, edit, expect) in cases {
        let prefix = damaged(&tmp.path().join(name), edit);
        let out = tmp.path().join(format!("{name}-out"));
        let err = import(&prefix, &out, &options(), Overwrite::Never)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expect), "{name}: {err}");
        assert!(err.lines().count() == 1, "{name}: {err}");
        assert!(!out.exists(), "{name}: wrote something");
    }
    // A missing shard names the file it looked for.
    let prefix = damaged(&tmp.path().join("no-shard"), |_, _| {});
    std::fs::remove_file(tmp.path().join("no-shard/model.ckpt.data-00000-of-00001")).unwrap();
    let err = import(&prefix, &tmp.path().join("o"), &options(), Overwrite::Never)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.ckpt.data-00000-of-00001"), "{err}");
    // A V1 checkpoint (a single file beside a .meta).
    let v1 = tmp.path().join("v1");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::write(v1.join("model.ckpt"), b"v1 bytes").unwrap();
    std::fs::write(v1.join("model.ckpt.meta"), b"graph").unwrap();
    let err = import(
        &v1.join("model.ckpt"),
        &tmp.path().join("o"),
        &options(),
        Overwrite::Never,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("V1 checkpoint"), "{err}");
}

/// Writes a LevelDB-format table of `entries` (sorted by key) as TensorFlow does, each
/// data block snappy-compressed when `snappy`.
fn write_table(path: &Path, entries: &[(Vec<u8>, Vec<u8>)], snappy: bool) {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn block(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        // Every entry a restart point (no shared prefixes): simple and valid.
        let mut out = Vec::new();
        let mut restarts = Vec::new();
        for (k, v) in entries {
            restarts.push(out.len() as u32);
            varint(&mut out, 0);
            varint(&mut out, k.len() as u64);
            varint(&mut out, v.len() as u64);
            out.extend_from_slice(k);
            out.extend_from_slice(v);
        }
        for r in &restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(restarts.len() as u32).to_le_bytes());
        out
    }
    fn put_block(file: &mut Vec<u8>, contents: &[u8], kind: u8) -> (u64, u64) {
        let offset = file.len() as u64;
        file.extend_from_slice(contents);
        let mut crc = crc32c::crc32c(contents);
        crc = crc32c::crc32c_append(crc, &[kind]);
        file.push(kind);
        file.extend_from_slice(&crc.rotate_right(15).wrapping_add(0xa282_ead8).to_le_bytes());
        (offset, contents.len() as u64)
    }
    let mut file = Vec::new();
    let mut index_entries = Vec::new();
    for chunk in entries.chunks(7) {
        let raw = block(chunk);
        let (contents, kind) = if snappy {
            (snap::raw::Encoder::new().compress_vec(&raw).unwrap(), 1)
        } else {
            (raw, 0)
        };
        let (offset, size) = put_block(&mut file, &contents, kind);
        let mut handle = Vec::new();
        varint(&mut handle, offset);
        varint(&mut handle, size);
        index_entries.push((chunk.last().unwrap().0.clone(), handle));
    }
    let meta = put_block(&mut file, &block(&[]), 0);
    let index = put_block(&mut file, &block(&index_entries), 0);
    let mut footer = Vec::new();
    for (o, s) in [meta, index] {
        varint(&mut footer, o);
        varint(&mut footer, s);
    }
    footer.resize(40, 0);
    footer.extend_from_slice(&0xdb47_7524_8b80_fb57u64.to_le_bytes());
    file.extend_from_slice(&footer);
    std::fs::write(path, file).unwrap();
}

/// The fixture's own index entries, as (key, value) pairs in key order.
fn fixture_entries() -> Vec<(Vec<u8>, Vec<u8>)> {
    // A minimal reader of the fixture's (uncompressed) blocks, independent of the
    // importer's.
    let bytes = std::fs::read(fixture().join("ckpt/model.ckpt.index")).unwrap();
    fn varint(b: &[u8], at: &mut usize) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let x = b[*at];
            *at += 1;
            v |= u64::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }
    fn entries(block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let n = u32::from_le_bytes(block[block.len() - 4..].try_into().unwrap()) as usize;
        let end = block.len() - 4 - 4 * n;
        let (mut at, mut key, mut out) = (0, Vec::new(), Vec::new());
        while at < end {
            let shared = varint(block, &mut at) as usize;
            let unshared = varint(block, &mut at) as usize;
            let len = varint(block, &mut at) as usize;
            key.truncate(shared);
            key.extend_from_slice(&block[at..at + unshared]);
            at += unshared;
            out.push((key.clone(), block[at..at + len].to_vec()));
            at += len;
        }
        out
    }
    let footer = &bytes[bytes.len() - 48..];
    let mut at = 0;
    let (_, _) = (varint(footer, &mut at), varint(footer, &mut at));
    let (io, is) = (
        varint(footer, &mut at) as usize,
        varint(footer, &mut at) as usize,
    );
    let mut out = Vec::new();
    for (_, handle) in entries(&bytes[io..io + is]) {
        let mut at = 0;
        let (o, s) = (
            varint(&handle, &mut at) as usize,
            varint(&handle, &mut at) as usize,
        );
        assert_eq!(bytes[o + s], 0, "the fixture's blocks are uncompressed");
        out.extend(entries(&bytes[o..o + s]));
    }
    out
}

#[test]
fn snappy_blocks_read_and_another_models_checkpoint_names_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture().join("ckpt/model.ckpt.data-00000-of-00001");
    let all = fixture_entries();
    assert!(all.len() > 20 && all[0].0.is_empty(), "header first");

    // The same bundle with snappy-compressed blocks: the same weights.
    let prefix = checkpoint(&tmp.path().join("snappy"), &all, true, &data);
    let out = tmp.path().join("snappy-out");
    import(&prefix, &out, &options(), Overwrite::Never).unwrap();
    assert_eq!(
        values(&out.join("weights.safetensors")),
        values(&fixture().join("weights.safetensors"))
    );

    // Without the output head: not this model, and the error names what is missing.
    let fewer: Vec<_> = all
        .iter()
        .filter(|(k, _)| !k.starts_with(b"logits/"))
        .cloned()
        .collect();
    let err = refused(
        tmp.path(),
        &checkpoint(&tmp.path().join("other"), &fewer, false, &data),
    );
    assert!(err.contains("missing") && err.contains("logits/W"), "{err}");

    // A variable of another dtype (half precision, 19): named, with its dtype.
    let half: Vec<_> = all
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            if k.as_slice() == b"logits/W" {
                // BundleEntryProto field 1 (dtype), a varint: 08 01 → 08 13.
                assert_eq!(&v[..2], &[0x08, 0x01]);
                v[1] = 19;
            }
            (k.clone(), v)
        })
        .collect();
    let err = refused(
        tmp.path(),
        &checkpoint(&tmp.path().join("half"), &half, false, &data),
    );
    assert!(err.contains("logits/W has dtype 19"), "{err}");
}

/// A checkpoint in `dir` whose index holds `entries` (its blocks snappy-compressed if
/// asked) over the fixture's `data`; its prefix.
fn checkpoint(dir: &Path, entries: &[(Vec<u8>, Vec<u8>)], snappy: bool, data: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    write_table(&dir.join("model.ckpt.index"), entries, snappy);
    std::fs::copy(data, dir.join("model.ckpt.data-00000-of-00001")).unwrap();
    dir.join("model.ckpt")
}

/// Importing `prefix` into `tmp/o` fails, writing nothing; the error's words.
fn refused(tmp: &Path, prefix: &Path) -> String {
    let out = tmp.join("o");
    let err = import(prefix, &out, &options(), Overwrite::Never)
        .unwrap_err()
        .to_string();
    assert!(!out.exists());
    err
}

/// A `BundleEntryProto` of a float32 tensor, encoded by hand (fields 1–6).
fn entry(dims: &[usize], offset: usize, size: usize, crc: u32) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut shape = Vec::new();
    for &d in dims {
        let mut dim = vec![0x08];
        varint(&mut dim, d as u64);
        shape.push(0x12);
        varint(&mut shape, dim.len() as u64);
        shape.extend(dim);
    }
    let mut out = vec![0x08, 0x01, 0x12];
    varint(&mut out, shape.len() as u64);
    out.extend(shape);
    out.push(0x20);
    varint(&mut out, offset as u64);
    out.push(0x28);
    varint(&mut out, size as u64);
    out.push(0x35);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn ema_takes_the_moving_averages() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = std::fs::read(fixture().join("ckpt/model.ckpt.data-00000-of-00001")).unwrap();
    let raw = values(&fixture().join("weights.safetensors"));
    // Each variable's shadow: its values doubled, appended to the data.
    let mut all = fixture_entries();
    for (name, dims, v) in &raw {
        let bytes: Vec<u8> = v.iter().flat_map(|x| (2.0 * x).to_le_bytes()).collect();
        let crc = crc32c::crc32c(&bytes)
            .rotate_right(15)
            .wrapping_add(0xa282_ead8);
        all.push((
            format!("{name}/ExponentialMovingAverage").into_bytes(),
            entry(dims, data.len(), bytes.len(), crc),
        ));
        data.extend(bytes);
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let dir = tmp.path().join("ema");
    std::fs::create_dir_all(&dir).unwrap();
    write_table(&dir.join("model.ckpt.index"), &all, false);
    std::fs::write(dir.join("model.ckpt.data-00000-of-00001"), data).unwrap();
    let ema = ImportOptions {
        ema: true,
        ..options()
    };
    let out = tmp.path().join("ema-out");
    let imported = import(&dir.join("model.ckpt"), &out, &ema, Overwrite::Never).unwrap();
    assert_eq!(imported.taken, raw.len());
    let doubled: Vec<_> = raw
        .iter()
        .map(|(n, d, v)| {
            (
                n.clone(),
                d.clone(),
                v.iter().map(|x| 2.0 * x).collect::<Vec<f32>>(),
            )
        })
        .collect();
    assert_eq!(values(&out.join("weights.safetensors")), doubled);
    // Without --ema, the raw weights of the same checkpoint.
    let out = tmp.path().join("raw-out");
    import(&dir.join("model.ckpt"), &out, &options(), Overwrite::Never).unwrap();
    assert_eq!(values(&out.join("weights.safetensors")), raw);
}
