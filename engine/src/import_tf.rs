//! Importing a TensorFlow checkpoint of Magenta's NSynth (`model.ckpt-N.index` +
//! `.data-SSSSS-of-NNNNN`) into a model directory, in Rust.
//!
//! TensorFlow's V2 checkpoint ("tensor bundle"): the `.index` file is a LevelDB-format
//! table whose keys are variable names and whose values are `BundleEntryProto`s (dtype,
//! shape, shard, offset, size, masked CRC-32C of the bytes), with a `BundleHeaderProto`
//! under the empty key; the data shards hold the raw little-endian tensors back to back.
//! A table is data blocks (entries with keys sharing prefixes with the previous key,
//! restart points every few entries, a trailer of compression type and masked CRC-32C),
//! an index block pointing at them, and a 48-byte footer (metaindex and index handles,
//! then the magic number).
//!
//! The model's variables are taken by their Magenta names (the raw weights, as
//! `fastgen.py` restores them, or their `ExponentialMovingAverage` shadows), everything
//! else (optimiser slots, the step counter) is passed over, and the [`Config`] is read
//! from the shapes and variable counts. Every tensor's size and checksum is verified
//! before anything is written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use autoencoder::Config;
use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::fsutil::{Overwrite, write_atomic};
use crate::models::dir::{CONFIG_FILE, WEIGHTS_FILE};

/// The last 8 bytes of a LevelDB-format table.
const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Footer: two block handles (at most 2 × 10 bytes each), padded to 40, then the magic.
const FOOTER_LEN: usize = 48;
/// A block's trailer: its compression type and the masked CRC-32C.
const TRAILER_LEN: usize = 5;
/// `DT_FLOAT` in TensorFlow's `types.proto`.
const DT_FLOAT: i32 = 1;
/// Largest `.index` file read (the published NSynth checkpoint's is a few hundred KB).
const MAX_INDEX_BYTES: u64 = 64 << 20;
/// Magenta's dilation cycle (`h512_bo16.py`: 10 stages).
pub const MAGENTA_STAGES: usize = 10;

/// `tensorflow/core/protobuf/tensor_bundle.proto`, the fields read here.
#[derive(Clone, PartialEq, prost::Message)]
struct BundleHeaderProto {
    #[prost(int32, tag = "1")]
    num_shards: i32,
    /// 0: little-endian, 1: big-endian.
    #[prost(int32, tag = "2")]
    endianness: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorShapeDim {
    #[prost(int64, tag = "1")]
    size: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    dim: Vec<TensorShapeDim>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct BundleEntryProto {
    #[prost(int32, tag = "1")]
    dtype: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShapeProto>,
    #[prost(int32, tag = "3")]
    shard_id: i32,
    #[prost(int64, tag = "4")]
    offset: i64,
    #[prost(int64, tag = "5")]
    size: i64,
    #[prost(fixed32, tag = "6")]
    crc32c: u32,
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Take the `…/ExponentialMovingAverage` shadows instead of the raw weights.
    pub ema: bool,
    /// Samples per embedding frame (not in the weights; Magenta's, `Config::nsynth()`'s).
    pub hop_length: usize,
    /// The decoder's and the encoder's dilation cycles (not in the weights); `None`:
    /// Magenta's 10 where the layer count is a multiple of 10.
    pub num_stages: Option<usize>,
    pub ae_num_stages: Option<usize>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            ema: false,
            hop_length: Config::nsynth().ae_hop_length,
            num_stages: None,
            ae_num_stages: None,
        }
    }
}

/// What an import read.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The checkpoint prefix (`…/model.ckpt-200000`).
    pub prefix: PathBuf,
    pub config: Config,
    /// Variables in the checkpoint, and those taken.
    pub variables: usize,
    pub taken: usize,
}

/// The checkpoint prefix `ckpt` names: itself, or, for a folder, the one its
/// `checkpoint` file names (`model_checkpoint_path: "…"`).
pub fn resolve_prefix(ckpt: &Path) -> Result<PathBuf> {
    if !ckpt.is_dir() {
        return Ok(ckpt.to_path_buf());
    }
    let path = ckpt.join("checkpoint");
    let text = std::fs::read_to_string(&path).map_err(|error| Error::Read {
        path: path.clone(),
        error,
    })?;
    let name = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("model_checkpoint_path:"))
        .map(|v| v.trim().trim_matches('"').to_string())
        .ok_or_else(|| Error::invalid(&path, "names no model_checkpoint_path"))?;
    let named = PathBuf::from(&name);
    Ok(if named.is_absolute() {
        named
    } else {
        ckpt.join(named)
    })
}

/// Reads the checkpoint at `prefix` and writes `config.json` + `weights.safetensors`
/// into `out` (atomically, refusing existing files unless `overwrite`).
pub fn import(
    prefix: &Path,
    out: &Path,
    options: &ImportOptions,
    overwrite: Overwrite,
) -> Result<Imported> {
    let (entries, num_shards) = read_index(prefix)?;
    let tensors = read_model_tensors(prefix, &entries, num_shards, options.ema)?;
    let config = infer_config(&tensors, prefix, options)?;
    // Every variable the model needs, with its shape.
    let mut missing = Vec::new();
    let mut weights = HashMap::new();
    let host = Device::Cpu; // host: a checkpoint's bytes, read from a file and written to one
    for (name, shape) in autoencoder::wavenet::weights::shapes(&config) {
        match tensors.get(&name) {
            Some((dims, data)) if *dims == shape => {
                let t = Tensor::from_slice(data, dims.as_slice(), &host)
                    .map_err(autoencoder::Error::from)?;
                weights.insert(name, t);
            }
            Some((dims, _)) => {
                return Err(Error::invalid(
                    index_path(prefix),
                    format!("{name} has shape {dims:?}, the model needs {shape:?}"),
                ));
            }
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        return Err(Error::invalid(
            index_path(prefix),
            format!(
                "not an NSynth WaveNet autoencoder checkpoint: {} of its variables are missing ({})",
                missing.len(),
                missing
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let config_path = out.join(CONFIG_FILE);
    let weights_path = out.join(WEIGHTS_FILE);
    for path in [&config_path, &weights_path] {
        if overwrite == Overwrite::Never && path.exists() {
            return Err(Error::invalid(path, "already exists"));
        }
    }
    std::fs::create_dir_all(out).map_err(|error| Error::Write {
        path: out.to_path_buf(),
        error,
    })?;
    let json = config.to_json().map_err(|error| Error::Model {
        path: config_path.clone(),
        error,
    })?;
    crate::fsutil::write_tensors(&weights_path, &weights, overwrite)?;
    write_atomic(&config_path, overwrite, |w| {
        std::io::Write::write_all(w, json.as_bytes())
    })?;
    Ok(Imported {
        prefix: prefix.to_path_buf(),
        config,
        variables: entries.len(),
        taken: weights.len(),
    })
}

fn index_path(prefix: &Path) -> PathBuf {
    suffixed(prefix, ".index")
}

fn suffixed(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The variables of the `.index` table and the number of data shards.
fn read_index(prefix: &Path) -> Result<(HashMap<String, BundleEntryProto>, usize)> {
    let path = index_path(prefix);
    if !path.exists() && suffixed(prefix, ".meta").exists() && prefix.exists() {
        return Err(Error::invalid(
            prefix,
            "a V1 checkpoint (one file, no .index): only TensorFlow's V2 format is read",
        ));
    }
    let bytes = crate::error::read_bounded(&path, MAX_INDEX_BYTES)?;
    let bad = |what: String| Error::invalid(&path, what);
    if bytes.len() < FOOTER_LEN {
        return Err(bad("too short for a checkpoint index".into()));
    }
    let footer = &bytes[bytes.len() - FOOTER_LEN..];
    let magic = u64::from_le_bytes(
        footer[FOOTER_LEN - 8..]
            .try_into()
            .map_err(|_| bad("no footer".into()))?,
    );
    if magic != TABLE_MAGIC {
        return Err(bad(
            "not a TensorFlow V2 checkpoint index (no table magic at its end)".into(),
        ));
    }
    let mut at = 0;
    let _metaindex = read_handle(footer, &mut at).ok_or_else(|| bad("damaged footer".into()))?;
    let index = read_handle(footer, &mut at).ok_or_else(|| bad("damaged footer".into()))?;
    let index_block = read_block(&bytes, index, &path)?;
    let mut entries = HashMap::new();
    let mut header: Option<BundleHeaderProto> = None;
    for (_, handle) in block_entries(&index_block, &path)? {
        let mut at = 0;
        let handle =
            read_handle(&handle, &mut at).ok_or_else(|| bad("damaged index block".into()))?;
        let block = read_block(&bytes, handle, &path)?;
        for (key, value) in block_entries(&block, &path)? {
            if key.is_empty() {
                header = Some(
                    prost::Message::decode(value.as_slice())
                        .map_err(|e| bad(format!("damaged bundle header ({e})")))?,
                );
                continue;
            }
            let name =
                String::from_utf8(key).map_err(|_| bad("a variable name is not UTF-8".into()))?;
            let entry: BundleEntryProto = prost::Message::decode(value.as_slice())
                .map_err(|e| bad(format!("damaged entry for {name} ({e})")))?;
            entries.insert(name, entry);
        }
    }
    let header = header.ok_or_else(|| bad("no bundle header (not a tensor bundle)".into()))?;
    if header.endianness != 0 {
        return Err(bad(
            "a big-endian checkpoint: only little-endian is read".into()
        ));
    }
    let shards = usize::try_from(header.num_shards)
        .ok()
        .filter(|&n| (1..=100_000).contains(&n))
        .ok_or_else(|| bad(format!("{} data shards", header.num_shards)))?;
    Ok((entries, shards))
}

/// A block's place in the table: offset and size (without the trailer).
#[derive(Debug, Clone, Copy)]
struct Handle {
    offset: u64,
    size: u64,
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn read_handle(bytes: &[u8], at: &mut usize) -> Option<Handle> {
    Some(Handle {
        offset: read_varint(bytes, at)?,
        size: read_varint(bytes, at)?,
    })
}

/// LevelDB's masked CRC-32C (also TensorFlow's for tensor bytes).
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// A block's contents, checksum verified, decompressed.
fn read_block(table: &[u8], handle: Handle, path: &Path) -> Result<Vec<u8>> {
    let bad = |what: &str| Error::invalid(path, what.to_string());
    let start = usize::try_from(handle.offset).map_err(|_| bad("a block beyond the file"))?;
    let size = usize::try_from(handle.size).map_err(|_| bad("a block beyond the file"))?;
    let end = start
        .checked_add(size)
        .and_then(|e| e.checked_add(TRAILER_LEN))
        .filter(|&e| e <= table.len())
        .ok_or_else(|| bad("truncated: a block reaches past the end of the file"))?;
    let contents = &table[start..start + size];
    let kind = table[start + size];
    let stored = u32::from_le_bytes(
        table[start + size + 1..end]
            .try_into()
            .map_err(|_| bad("damaged block trailer"))?,
    );
    let mut crc = crc32c::crc32c(contents);
    crc = crc32c::crc32c_append(crc, &[kind]);
    if crc.rotate_right(15).wrapping_add(0xa282_ead8) != stored {
        return Err(bad("checksum mismatch in the index (a damaged file)"));
    }
    match kind {
        0 => Ok(contents.to_vec()),
        1 => snap::raw::Decoder::new()
            .decompress_vec(contents)
            .map_err(|e| Error::invalid(path, format!("damaged snappy block ({e})"))),
        other => Err(Error::invalid(
            path,
            format!("block compression type {other} is not supported"),
        )),
    }
}

/// The (key, value) entries of a block, keys rebuilt from their shared prefixes.
fn block_entries(block: &[u8], path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let bad = || Error::invalid(path, "a damaged table block".to_string());
    if block.len() < 4 {
        return Err(bad());
    }
    let restarts =
        u32::from_le_bytes(block[block.len() - 4..].try_into().map_err(|_| bad())?) as usize;
    let data_end = block.len().checked_sub(4 + 4 * restarts).ok_or_else(bad)?;
    let mut entries = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    let mut at = 0;
    while at < data_end {
        let shared = read_varint(block, &mut at).ok_or_else(bad)? as usize;
        let unshared = read_varint(block, &mut at).ok_or_else(bad)? as usize;
        let value_len = read_varint(block, &mut at).ok_or_else(bad)? as usize;
        if shared > key.len() || at + unshared + value_len > data_end {
            return Err(bad());
        }
        key.truncate(shared);
        key.extend_from_slice(&block[at..at + unshared]);
        at += unshared;
        entries.push((key.clone(), block[at..at + value_len].to_vec()));
        at += value_len;
    }
    Ok(entries)
}

/// The float variables the model can use (raw or EMA), `name → (shape, values)`. Every
/// tensor of the checkpoint (optimiser state included) is read from its shard, one at a
/// time, and its size and checksum verified; only the model's are kept.
#[allow(clippy::type_complexity)]
fn read_model_tensors(
    prefix: &Path,
    entries: &HashMap<String, BundleEntryProto>,
    num_shards: usize,
    ema: bool,
) -> Result<HashMap<String, (Vec<usize>, Vec<f32>)>> {
    use std::io::{Read, Seek, SeekFrom};
    const EMA: &str = "/ExponentialMovingAverage";
    let model_name = |key: &str| -> Option<String> {
        let base = if ema { key.strip_suffix(EMA)? } else { key };
        (base.ends_with("/W") || base.ends_with("/biases")).then(|| base.to_string())
    };
    if ema && !entries.keys().any(|k| model_name(k).is_some()) {
        return Err(Error::invalid(
            index_path(prefix),
            "the checkpoint holds no ExponentialMovingAverage shadows",
        ));
    }
    // In file order, shard by shard.
    let mut order: Vec<(&String, &BundleEntryProto)> = entries.iter().collect();
    order.sort_by_key(|(_, e)| (e.shard_id, e.offset));
    let mut open: Option<(usize, std::fs::File, u64, PathBuf)> = None;
    let mut out = HashMap::new();
    for (key, entry) in order {
        let shard = usize::try_from(entry.shard_id)
            .ok()
            .filter(|&s| s < num_shards)
            .ok_or_else(|| {
                Error::invalid(
                    index_path(prefix),
                    format!("{key} is in shard {} of {num_shards}", entry.shard_id),
                )
            })?;
        if open.as_ref().is_none_or(|(s, ..)| *s != shard) {
            let path = suffixed(prefix, &format!(".data-{shard:05}-of-{num_shards:05}"));
            let file = std::fs::File::open(&path).map_err(|error| Error::Read {
                path: path.clone(),
                error,
            })?;
            let len = file
                .metadata()
                .map_err(|error| Error::Read {
                    path: path.clone(),
                    error,
                })?
                .len();
            open = Some((shard, file, len, path));
        }
        let Some((_, file, len, data_path)) = open.as_mut() else {
            continue;
        };
        let (offset, size) = (
            u64::try_from(entry.offset).unwrap_or(u64::MAX),
            u64::try_from(entry.size).unwrap_or(u64::MAX),
        );
        if offset.checked_add(size).is_none_or(|end| end > *len) {
            return Err(Error::invalid(
                &*data_path,
                format!("truncated: {key} lies past the end of the data"),
            ));
        }
        let dims: Vec<usize> = entry
            .shape
            .as_ref()
            .map(|s| s.dim.iter().map(|d| d.size.max(0) as usize).collect())
            .unwrap_or_default();
        let count: u64 = dims.iter().map(|&d| d as u64).product();
        let element = match entry.dtype {
            DT_FLOAT | 3 => Some(4), // float32, int32
            2 | 9 => Some(8),        // float64, int64
            _ => None,               // strings and the rest: their size is their own
        };
        if let Some(e) = element
            && count * e != size
        {
            return Err(Error::invalid(
                index_path(prefix),
                format!(
                    "{key}: {size} bytes for a tensor of shape {dims:?} and dtype {}",
                    entry.dtype
                ),
            ));
        }
        let read_err = |error| Error::Read {
            path: data_path.clone(),
            error,
        };
        file.seek(SeekFrom::Start(offset)).map_err(read_err)?;
        let mut raw = vec![0u8; size as usize];
        file.read_exact(&mut raw).map_err(read_err)?;
        if masked_crc(&raw) != entry.crc32c {
            return Err(Error::invalid(
                &*data_path,
                format!("checksum mismatch in {key} (a damaged file)"),
            ));
        }
        let Some(name) = model_name(key) else {
            continue;
        };
        if entry.dtype != DT_FLOAT {
            return Err(Error::invalid(
                index_path(prefix),
                format!("{key} has dtype {} (only float32, 1, is read)", entry.dtype),
            ));
        }
        let values = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        out.insert(name, (dims, values));
    }
    Ok(out)
}

/// The hyper-parameters from the variables' shapes and counts.
fn infer_config(
    tensors: &HashMap<String, (Vec<usize>, Vec<f32>)>,
    prefix: &Path,
    options: &ImportOptions,
) -> Result<Config> {
    let path = index_path(prefix);
    let shape = |name: &str| -> Result<&Vec<usize>> {
        tensors.get(name).map(|(d, _)| d).ok_or_else(|| {
            Error::invalid(
                &path,
                format!("not an NSynth WaveNet autoencoder checkpoint: no {name}"),
            )
        })
    };
    let count = |prefix: &str| {
        (1..)
            .take_while(|i| tensors.contains_key(&format!("{prefix}_{i}/W")))
            .count()
    };
    let conv = |name: &str| -> Result<(usize, usize, usize)> {
        let d = shape(name)?;
        match d.as_slice() {
            [1, k, cin, cout] => Ok((*k, *cin, *cout)),
            other => Err(Error::invalid(
                &path,
                format!("{name} has shape {other:?}, not [1, taps, in, out]"),
            )),
        }
    };
    let num_layers = count("dilatedconv");
    let ae_num_layers = count("ae_dilatedconv");
    let (filter_length, width, _) = conv("dilatedconv_1/W")?;
    let (_, _, skip_width) = conv("skip_start/W")?;
    let (ae_filter_length, _, ae_width) = conv("ae_dilatedconv_1/W")?;
    let (_, _, ae_bottleneck_width) = conv("ae_bottleneck/W")?;
    let stages = |given: Option<usize>, layers: usize, part: &'static str| -> Result<usize> {
        match given {
            Some(s) => Ok(s),
            None if layers.is_multiple_of(MAGENTA_STAGES) => Ok(MAGENTA_STAGES),
            None => Err(Error::StagesUnknown {
                path: path.clone(),
                part,
                layers,
            }),
        }
    };
    let config = Config {
        num_stages: stages(options.num_stages, num_layers, "decoder")?,
        num_layers,
        filter_length,
        width,
        skip_width,
        ae_num_stages: stages(options.ae_num_stages, ae_num_layers, "encoder")?,
        ae_num_layers,
        ae_filter_length,
        ae_width,
        ae_bottleneck_width,
        ae_hop_length: options.hop_length,
        excitation_harmonics: 0,
        excitation_into: Default::default(),
    };
    config
        .validate()
        .map_err(|error| Error::Model { path, error })?;
    Ok(config)
}
