//! An SFZ writer: the text file of `<region>`s that points at a folder of WAVs.

use std::fmt::Write;

/// One region: a WAV, the key it sounds at, the keys and velocities it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// The WAV's path relative to the `.sfz` file (forward slashes).
    pub sample: String,
    pub keycenter: u8,
    pub keys: (u8, u8),
    pub velocities: (u8, u8),
    /// `[start, end)` of the sustain loop, in sample points of the WAV.
    pub sustain_loop: Option<(u32, u32)>,
}

/// The `.sfz` text: a header comment, the release in `<global>`, a region per entry.
pub fn write(title: &str, release_secs: f32, regions: &[Region]) -> String {
    let mut out = String::new();
    for line in title.lines() {
        let _ = writeln!(out, "// {line}");
    }
    let _ = writeln!(out, "\n<global>\nampeg_release={release_secs:.3}\n");
    for r in regions {
        let _ = write!(
            out,
            "<region> sample={} pitch_keycenter={} lokey={} hikey={} lovel={} hivel={}",
            r.sample, r.keycenter, r.keys.0, r.keys.1, r.velocities.0, r.velocities.1
        );
        match r.sustain_loop {
            // SFZ's loop_end is the loop's last sample point (inclusive).
            Some((start, end)) => {
                let _ = write!(
                    out,
                    " loop_mode=loop_sustain loop_start={start} loop_end={}",
                    end.saturating_sub(1)
                );
            }
            None => out.push_str(" loop_mode=no_loop"),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_written_with_their_opcodes() {
        let text = write(
            "Timbrel\nsecond line",
            0.25,
            &[
                Region {
                    sample: "x/k060.wav".into(),
                    keycenter: 60,
                    keys: (0, 61),
                    velocities: (1, 127),
                    sustain_loop: Some((100, 200)),
                },
                Region {
                    sample: "x/k063.wav".into(),
                    keycenter: 63,
                    keys: (62, 127),
                    velocities: (1, 127),
                    sustain_loop: None,
                },
            ],
        );
        assert!(text.starts_with("// Timbrel\n// second line\n"));
        assert!(text.contains("ampeg_release=0.250"));
        assert!(text.contains(
            "<region> sample=x/k060.wav pitch_keycenter=60 lokey=0 hikey=61 lovel=1 hivel=127 loop_mode=loop_sustain loop_start=100 loop_end=199\n"
        ));
        assert!(text.contains("lokey=62 hikey=127 lovel=1 hivel=127 loop_mode=no_loop\n"));
    }
}
