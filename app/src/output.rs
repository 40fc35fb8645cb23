//! Writing to stdout without `println!`'s panic when the reader goes away (`| head`).

use std::io::Write;

/// Text for stdout, written in one go by [`Output::flush`].
#[derive(Debug, Default)]
pub struct Output(String);

impl Output {
    pub fn line(&mut self, text: impl AsRef<str>) {
        self.0.push_str(text.as_ref());
        self.0.push('\n');
    }

    /// Writes everything to stdout. A closed pipe is not an error: the reader has what
    /// it wanted.
    pub fn flush(self) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        match stdout
            .write_all(self.0.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(()),
        }
    }
}
