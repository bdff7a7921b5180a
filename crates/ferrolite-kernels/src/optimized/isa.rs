//! Instruction-set levels and their runtime detection.
//!
//! Optimised kernels come in several variants (portable "scalar" code, AVX2 +
//! FMA, ...). A plan picks one when it is built, from [`detect`]: the best
//! level the CPU has, capped by the `FERROLITE_MAX_ISA` environment variable
//! (`scalar`, `neon`, `neondot`, `avx2`, `avx512` or `avx512vnni`, read
//! once) so the portable paths can be exercised on any machine.
//!
//! The levels of the two architectures share one order (scalar < NEON <
//! NEON dot product < AVX2 < AVX-512 < AVX-512 VNNI) only so that a cap is
//! a plain `min`:
//! an x86-64 CPU never reports NEON (capping it at `neon` leaves the scalar
//! kernels) and an aarch64 CPU never reports more than the dot product.
//!
//! Soundness: every SIMD kernel is reached only through a token type
//! ([`Avx2Fma`], [`Avx512`], [`Avx512Vnni`], [`Neon`], [`NeonDot`]) that
//! can only be made on its
//! architecture after
//! the CPU was found to support the features, so no caller-provided
//! [`IsaLevel`] can run an instruction the CPU lacks: plans clamp the
//! requested level with [`IsaLevel::clamp_to_cpu`].

use std::sync::OnceLock;

/// A level of SIMD support, ordered from least to most capable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IsaLevel {
    /// Portable Rust, no explicit intrinsics (the compiler may still
    /// auto-vectorise with the target's baseline, e.g. SSE2).
    Scalar,
    /// aarch64 Advanced SIMD (NEON, 4 floats per register; part of every
    /// aarch64 Linux/Android target).
    Neon,
    /// aarch64 NEON with the int8 dot product (`sdot`, FEAT_DotProd: most
    /// phone cores since 2017's Cortex-A55/A75).
    NeonDot,
    /// x86-64 AVX2 with FMA3 (8 floats per register).
    Avx2Fma,
    /// x86-64 AVX-512 F, BW, VL and DQ (Skylake-SP and later servers, Ice
    /// Lake and later; 16 floats per register), with AVX2 and FMA.
    Avx512,
    /// AVX-512 with VNNI (`vpdpbusd`: four u8 x i8 products summed into each
    /// i32 lane; Cascade Lake and later, Zen 4 and later).
    Avx512Vnni,
}

impl IsaLevel {
    /// Parse a `FERROLITE_MAX_ISA` value (case-insensitive).
    pub fn parse(s: &str) -> Option<IsaLevel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" | "none" | "generic" => Some(IsaLevel::Scalar),
            "neon" | "asimd" => Some(IsaLevel::Neon),
            "neondot" | "dotprod" | "neon_dot" => Some(IsaLevel::NeonDot),
            "avx2" | "avx2fma" | "avx2_fma" | "fma" => Some(IsaLevel::Avx2Fma),
            "avx512" | "avx512f" => Some(IsaLevel::Avx512),
            "avx512vnni" | "avx512_vnni" | "vnni" => Some(IsaLevel::Avx512Vnni),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IsaLevel::Scalar => "scalar",
            IsaLevel::Neon => "neon",
            IsaLevel::NeonDot => "neon_dot",
            IsaLevel::Avx2Fma => "avx2_fma",
            IsaLevel::Avx512 => "avx512",
            IsaLevel::Avx512Vnni => "avx512_vnni",
        }
    }

    /// This level, lowered to what the CPU actually supports.
    pub fn clamp_to_cpu(self) -> IsaLevel {
        self.min(cpu_level())
    }
}

/// The best level the CPU supports, ignoring the environment cap (cached).
pub fn cpu_level() -> IsaLevel {
    static CPU: OnceLock<IsaLevel> = OnceLock::new();
    *CPU.get_or_init(probe_cpu)
}

#[cfg(target_arch = "x86_64")]
fn probe_cpu() -> IsaLevel {
    let avx512 = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512dq");
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        IsaLevel::Scalar
    } else if avx512 && is_x86_feature_detected!("avx512vnni") {
        IsaLevel::Avx512Vnni
    } else if avx512 {
        IsaLevel::Avx512
    } else {
        IsaLevel::Avx2Fma
    }
}

#[cfg(target_arch = "aarch64")]
fn probe_cpu() -> IsaLevel {
    if !std::arch::is_aarch64_feature_detected!("neon") {
        IsaLevel::Scalar
    } else if std::arch::is_aarch64_feature_detected!("dotprod") {
        IsaLevel::NeonDot
    } else {
        IsaLevel::Neon
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn probe_cpu() -> IsaLevel {
    IsaLevel::Scalar
}

/// The cap from `FERROLITE_MAX_ISA`, read once. Unset or unrecognised: no cap.
pub fn env_cap() -> Option<IsaLevel> {
    static CAP: OnceLock<Option<IsaLevel>> = OnceLock::new();
    *CAP.get_or_init(|| std::env::var("FERROLITE_MAX_ISA").ok().and_then(|v| IsaLevel::parse(&v)))
}

/// The level plans should use: the CPU's best, capped by `FERROLITE_MAX_ISA`.
pub fn detect() -> IsaLevel {
    static LEVEL: OnceLock<IsaLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| match env_cap() {
        Some(cap) => cpu_level().min(cap),
        None => cpu_level(),
    })
}

/// Every level this CPU can run, lowest first (for tests and benchmarks,
/// which should cover all of them regardless of the environment cap).
pub fn available_levels() -> Vec<IsaLevel> {
    let cpu = cpu_level();
    let arch: &[IsaLevel] = match cpu {
        IsaLevel::Scalar => &[IsaLevel::Scalar],
        IsaLevel::Neon => &[IsaLevel::Scalar, IsaLevel::Neon],
        IsaLevel::NeonDot => &[IsaLevel::Scalar, IsaLevel::Neon, IsaLevel::NeonDot],
        _ => &[IsaLevel::Scalar, IsaLevel::Avx2Fma, IsaLevel::Avx512, IsaLevel::Avx512Vnni],
    };
    arch.iter().copied().filter(|&l| l <= cpu).collect()
}

/// Proof that the CPU supports AVX2 and FMA: the only way to reach the AVX2
/// kernels. Zero-sized; made only by [`Avx2Fma::new`].
#[derive(Clone, Copy, Debug)]
pub struct Avx2Fma(());

impl Avx2Fma {
    /// `Some` when the CPU has AVX2 + FMA and `level` asks for them.
    pub fn new(level: IsaLevel) -> Option<Avx2Fma> {
        if cfg!(target_arch = "x86_64") && level >= IsaLevel::Avx2Fma && cpu_level() >= IsaLevel::Avx2Fma {
            Some(Avx2Fma(()))
        } else {
            None
        }
    }
}

/// Proof that the CPU supports AVX-512 F/BW/VL/DQ (and AVX2 + FMA): the
/// only way to reach the AVX-512 kernels. Made only by [`Avx512::new`].
#[derive(Clone, Copy, Debug)]
pub struct Avx512(());

impl Avx512 {
    /// `Some` when the CPU has AVX-512 and `level` asks for it.
    pub fn new(level: IsaLevel) -> Option<Avx512> {
        if cfg!(target_arch = "x86_64") && level >= IsaLevel::Avx512 && cpu_level() >= IsaLevel::Avx512 {
            Some(Avx512(()))
        } else {
            None
        }
    }
}

/// Proof that the CPU supports AVX-512 (as [`Avx512`]) and its byte
/// permutes (VBMI: `vpermi2b`, a 128-byte table lookup per instruction).
/// Made only by [`Avx512Vbmi::new`].
#[derive(Clone, Copy, Debug)]
pub struct Avx512Vbmi(());

impl Avx512Vbmi {
    /// `Some` when the CPU has AVX-512 VBMI and `level` asks for AVX-512.
    pub fn new(level: IsaLevel) -> Option<Avx512Vbmi> {
        #[cfg(target_arch = "x86_64")]
        if Avx512::new(level).is_some() && is_x86_feature_detected!("avx512vbmi") {
            return Some(Avx512Vbmi(()));
        }
        let _ = level;
        None
    }
}

/// Proof that the CPU supports AVX-512 with VNNI. Made only by
/// [`Avx512Vnni::new`].
#[derive(Clone, Copy, Debug)]
pub struct Avx512Vnni(());

impl Avx512Vnni {
    /// `Some` when the CPU has AVX-512 VNNI and `level` asks for it.
    pub fn new(level: IsaLevel) -> Option<Avx512Vnni> {
        if cfg!(target_arch = "x86_64") && level >= IsaLevel::Avx512Vnni && cpu_level() >= IsaLevel::Avx512Vnni {
            Some(Avx512Vnni(()))
        } else {
            None
        }
    }

    /// The plain AVX-512 token this one implies.
    pub fn avx512(self) -> Avx512 {
        Avx512(())
    }
}

/// Proof that the CPU has aarch64's Advanced SIMD (NEON): the only way to
/// reach the NEON kernels. Zero-sized; made only by [`Neon::new`].
#[derive(Clone, Copy, Debug)]
pub struct Neon(());

impl Neon {
    /// `Some` on an aarch64 CPU with NEON when `level` asks for it (an
    /// AVX level, meaningless there, counts as "the best there is").
    pub fn new(level: IsaLevel) -> Option<Neon> {
        let cpu = cpu_level();
        if cfg!(target_arch = "aarch64") && level >= IsaLevel::Neon && matches!(cpu, IsaLevel::Neon | IsaLevel::NeonDot)
        {
            Some(Neon(()))
        } else {
            None
        }
    }
}

/// Proof that the CPU has NEON and the int8 dot product (`sdot`). Made only
/// by [`NeonDot::new`].
#[derive(Clone, Copy, Debug)]
pub struct NeonDot(());

impl NeonDot {
    /// `Some` on an aarch64 CPU with the dot product when `level` asks for
    /// it (or for an AVX level, as with [`Neon::new`]).
    pub fn new(level: IsaLevel) -> Option<NeonDot> {
        if cfg!(target_arch = "aarch64") && level >= IsaLevel::NeonDot && cpu_level() == IsaLevel::NeonDot {
            Some(NeonDot(()))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_order() {
        assert_eq!(IsaLevel::parse("SCALAR"), Some(IsaLevel::Scalar));
        assert_eq!(IsaLevel::parse("avx2"), Some(IsaLevel::Avx2Fma));
        assert_eq!(IsaLevel::parse("avx512"), Some(IsaLevel::Avx512));
        assert_eq!(IsaLevel::parse("sse9"), None);
        assert_eq!(IsaLevel::parse("neon"), Some(IsaLevel::Neon));
        assert!(IsaLevel::Scalar < IsaLevel::Avx2Fma && IsaLevel::Avx2Fma < IsaLevel::Avx512);
    }

    #[test]
    fn detect_is_within_cpu_and_cap() {
        println!("levels: {:?} (detected {:?})", available_levels(), detect());
        // Advanced SIMD is part of every aarch64 Linux CPU, so the NEON
        // kernels are always the ones tested there.
        #[cfg(target_arch = "aarch64")]
        assert!(cpu_level() >= IsaLevel::Neon && cpu_level() <= IsaLevel::NeonDot);
        let l = detect();
        assert!(l <= cpu_level());
        if let Some(cap) = env_cap() {
            assert!(l <= cap);
        }
        assert_eq!(available_levels()[0], IsaLevel::Scalar);
        assert_eq!(*available_levels().last().unwrap(), cpu_level());
        assert!(Avx2Fma::new(IsaLevel::Scalar).is_none());
        assert_eq!(Avx2Fma::new(IsaLevel::Avx512).is_some(), cpu_level() >= IsaLevel::Avx2Fma);
        // Each architecture's token only on its own architecture.
        assert!(Avx2Fma::new(IsaLevel::Avx512).is_none() || Neon::new(IsaLevel::Avx512).is_none());
        let arm = cfg!(target_arch = "aarch64");
        assert_eq!(Neon::new(IsaLevel::Neon).is_some(), arm && cpu_level() >= IsaLevel::Neon);
        assert_eq!(NeonDot::new(IsaLevel::Avx512).is_some(), arm && cpu_level() == IsaLevel::NeonDot);
        assert!(NeonDot::new(IsaLevel::Neon).is_none());
        assert_eq!(Avx512::new(IsaLevel::Avx512Vnni).is_some(), cpu_level() >= IsaLevel::Avx512);
        assert!(Avx512::new(IsaLevel::Avx2Fma).is_none());
        assert_eq!(Avx512Vnni::new(IsaLevel::Avx512Vnni).is_some(), cpu_level() == IsaLevel::Avx512Vnni);
        assert!(Avx512Vnni::new(IsaLevel::Avx512).is_none());
        assert!(Neon::new(IsaLevel::Scalar).is_none());
    }
}
