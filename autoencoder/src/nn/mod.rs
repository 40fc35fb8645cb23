//! The layers the families are built of, on candle: Magenta's dilated convolution
//! ([`conv`]: `Conv1d`, causal for the decoders, `SAME` for the encoder), the gated
//! residual layer the WaveNet decoder and the student's flows stack ([`gated`]), and the
//! NSynth encoder every family conditions on ([`encoder`]).

pub mod conv;
pub mod encoder;
pub(crate) mod gated;

pub use conv::{Conv1d, Conv1dConfig, Padding};
pub use encoder::{Encoder, EncoderConfig};
