//! Choosing where the model runs.

use candle_core::Device;

/// `cpu`, or `cuda` (GPU 0) in a build with the `cuda` feature.
pub fn by_name(name: &str) -> Result<Device, String> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(),
        other => Err(format!("unknown device {other:?} (cpu or cuda)")),
    }
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device, String> {
    // candle's errors carry a backtrace when RUST_BACKTRACE is set: keep the first line.
    Device::new_cuda(0).map_err(|e| {
        let e = e.to_string();
        format!(
            "no usable CUDA GPU ({})",
            e.lines().next().unwrap_or_default()
        )
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device, String> {
    Err("this timbrel was built without CUDA support (build with `--features cuda`)".into())
}

/// A short name for status lines.
pub fn describe(device: &Device) -> &'static str {
    match device {
        Device::Cpu => "CPU",
        Device::Cuda(_) => "CUDA GPU",
        Device::Metal(_) => "Metal GPU",
    }
}
