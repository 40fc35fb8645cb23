//! Choosing where the model runs.

use candle_core::Device;

use crate::error::{Error, Result};

/// `cpu`, or `cuda` (GPU 0) in a build with the `cuda` feature.
pub fn by_name(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(),
        other => Err(Error::Device(format!(
            "unknown device {other:?} (cpu or cuda)"
        ))),
    }
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device> {
    // candle's errors carry a backtrace when RUST_BACKTRACE is set: keep the first line.
    Device::new_cuda(0).map_err(|e| {
        let e = e.to_string();
        Error::Device(format!(
            "no usable CUDA GPU ({})",
            e.lines().next().unwrap_or_default()
        ))
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device> {
    Err(Error::Device(
        "this timbrel was built without CUDA support (it is built with the `cuda` feature)".into(),
    ))
}

/// A short name for status lines.
pub fn describe(device: &Device) -> &'static str {
    match device {
        Device::Cpu => "CPU",
        Device::Cuda(_) => "CUDA GPU",
        Device::Metal(_) => "Metal GPU",
    }
}
