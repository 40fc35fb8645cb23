//! A look at RIFF/WAVE and AIFF headers before symphonia sees them: symphonia 0.5 panics
//! on some impossible values (a sample rate of zero), and we never panic on user files.

use std::io::Read;

/// Checks the format chunk of a WAV or AIFF file for zero channels or a zero sample rate.
/// Returns the cause of the first problem found; files of other kinds pass.
pub fn check(head: &[u8]) -> Option<&'static str> {
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        let fmt = find_chunk(&head[12..], b"fmt ", u32::from_le_bytes)?;
        if fmt.len() >= 8 {
            let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
            let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
            return problem(channels, rate);
        }
    } else if head.len() >= 12 && &head[..4] == b"FORM" && matches!(&head[8..12], b"AIFF" | b"AIFC")
    {
        let comm = find_chunk(&head[12..], b"COMM", u32::from_be_bytes)?;
        if comm.len() >= 18 {
            let channels = u16::from_be_bytes([comm[0], comm[1]]);
            // 80-bit extended: an exponent below the bias is a rate under 1 Hz.
            let exponent = u16::from_be_bytes([comm[8], comm[9]]) & 0x7fff;
            let rate = if exponent < 16383 { 0 } else { 1 };
            return problem(channels, rate);
        }
    }
    None
}

/// For a WAV or AIFF-C header that symphonia refuses: the codec it names.
pub fn codec_of(head: &[u8]) -> Option<String> {
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        let fmt = find_chunk(&head[12..], b"fmt ", u32::from_le_bytes)?;
        let tag = u16::from_le_bytes([*fmt.first()?, *fmt.get(1)?]);
        return Some(format!("WAV format tag {tag:#06x}"));
    }
    if head.len() >= 12 && &head[..4] == b"FORM" && &head[8..12] == b"AIFC" {
        let comm = find_chunk(&head[12..], b"COMM", u32::from_be_bytes)?;
        let kind = comm.get(18..22)?;
        return Some(format!(
            "AIFF-C compression {:?}",
            String::from_utf8_lossy(kind)
        ));
    }
    None
}

fn problem(channels: u16, rate: u32) -> Option<&'static str> {
    if channels == 0 {
        Some("the header gives zero channels")
    } else if rate == 0 {
        Some("the header gives a sample rate of zero")
    } else {
        None
    }
}

/// The body of the first chunk `id` among `chunks` (as far as `chunks` goes).
fn find_chunk<'a>(
    mut chunks: &'a [u8],
    id: &[u8; 4],
    size: fn([u8; 4]) -> u32,
) -> Option<&'a [u8]> {
    while chunks.len() >= 8 {
        let len = size([chunks[4], chunks[5], chunks[6], chunks[7]]) as usize;
        let body = &chunks[8..];
        if &chunks[..4] == id {
            return Some(&body[..len.min(body.len())]);
        }
        // Chunks are padded to an even length.
        let skip = len.checked_add(len & 1)?;
        chunks = body.get(skip..)?;
    }
    None
}

/// The first `n` bytes of a file (fewer if it is shorter).
pub fn read_head(file: &mut std::fs::File, n: usize) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    file.by_ref().take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}
