//! `timbrel cache ...`: the embedding cache (where it is, what it holds, emptying it).

use std::process::ExitCode;

use anyhow::anyhow;
use engine::synth::Cache;
use engine::synth::cache::{Info, MAX_MB_VAR};

use crate::output::Output;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Where the embedding cache is, how many entries and bytes it holds, and its bound
    /// (TIMBREL_CACHE_MAX_MB, default 256; the least recently used entries go past it).
    Info(Args),
    /// Remove every cache entry (only the cache's own files; anything else in the folder
    /// stays).
    Clear(Args),
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: &Command) -> anyhow::Result<ExitCode> {
    let cache = Cache::user_default()
        .ok_or_else(|| anyhow!("no cache folder: set TIMBREL_CACHE_DIR, XDG_CACHE_HOME or HOME"))?;
    let (info, args, verb) = match command {
        Command::Info(args) => (cache.info()?, args, None),
        Command::Clear(args) => (cache.clear()?, args, Some("removed")),
    };
    let mut out = Output::default();
    if args.json {
        out.line(serde_json::to_string_pretty(&info)?);
    } else {
        out.line(describe(&info, verb));
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// One line: the folder, its entries and bytes (what was removed, for `clear`), the bound.
fn describe(info: &Info, verb: Option<&str>) -> String {
    let mb = |bytes: u64| bytes as f64 / 1e6;
    format!(
        "{}: {} {} entries, {:.1} MB (bound {:.0} MB, {MAX_MB_VAR})",
        info.dir.display(),
        verb.unwrap_or("holds"),
        info.entries,
        mb(info.bytes),
        mb(info.max_bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_in_one_line() {
        let info = Info {
            dir: "/c".into(),
            entries: 3,
            bytes: 2_500_000,
            max_bytes: 256_000_000,
        };
        assert_eq!(
            describe(&info, None),
            "/c: holds 3 entries, 2.5 MB (bound 256 MB, TIMBREL_CACHE_MAX_MB)"
        );
        assert!(describe(&info, Some("removed")).starts_with("/c: removed 3 entries"));
    }
}
