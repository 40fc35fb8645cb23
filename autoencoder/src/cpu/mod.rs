//! What the CPU generators share: the instruction set they run ([`Isa`]), matrices
//! repacked into register-tile panels and the gated epilogue over them ([`kernels`]:
//! `Packed`, `matmul`, `gate`, `exp_fast`), spreading one step over threads
//! ([`parallel`]: `Part`, `Exchange`, the spin barrier), and small row-major products
//! that allocate nothing, for an audio thread ([`rows`]).

pub mod kernels;
pub(crate) mod parallel;
pub mod rows;

pub use kernels::{NR, exp_fast, sigmoid, tanh};

/// The instruction set the kernels were compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX2 and FMA.
    Avx2Fma,
    /// Portable code (still auto-vectorised for the baseline target).
    Generic,
}

impl Isa {
    /// The best the running CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2Fma;
            }
        }
        Isa::Generic
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx2Fma => "avx2+fma",
            Isa::Generic => "generic",
        }
    }
}
