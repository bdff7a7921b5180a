//! Float GEMM against pre-packed weights: `C = clamp(A · Wᵀ + bias)`.
//!
//! `W` is `[n, k]` row-major (output channels by depth), which is both a
//! conv's OHWI filter flattened and FULLY_CONNECTED's weight matrix. It is
//! packed once ([`PackedWeightsF32::pack`]) into panels of [`NR`] columns:
//! panel `j` holds, for each `p in 0..k`, the 16 values `W[16j + c][p]`
//! (zero past `n`), so a micro-kernel reads one contiguous 64-byte row per
//! depth step. `A` is read in place, no packing: rows `lda` apart, or
//! gathered ([`gemm_f32_gather`]: a start per row and the depth in
//! segments, a convolution's receptive fields read from its input).
//!
//! Micro-kernels (all over the same packing):
//! - `f32_gemm_{1..6}x16_avx2_fma`: 6 rows × 16 columns = 12 ymm
//!   accumulators, one FMA per (row, half-panel) per depth step; a GEMM of
//!   one row (GEMV, batch-1 FULLY_CONNECTED) unrolls the depth loop four
//!   ways to hide the FMA latency (another summation order, so 1-row tiles
//!   of larger GEMMs keep the common one).
//! - `f32_gemm_{1..8}x32_avx512` (`gemm/avx512.rs`): the same sums with
//!   one 512-bit register per panel row, two panels per tile (8 rows for
//!   deep GEMMs, up to 12 over a single panel).
//! - `f32_gemm_{1..6}x16_neon` (aarch64): the same tiles in 24 of NEON's
//!   32 q registers (four per row), the same summation order (each sum
//!   starts from the bias and adds one fused product per depth step), so a
//!   conv gives the same bits on an AVX2 PC and an ARM phone; the GEMV
//!   twin unrolls the depth like the AVX2 one.
//! - `f32_gemm_{1..4}x16_scalar`: portable Rust, always compiled.
//!
//! A kernel call covers one row tile across a run of panels (looping over
//! them inside), so shallow GEMMs (1x1 convs of depth 16-32, where a tile is
//! ~100 FMA cycles) do not pay a call, bounds checks and a bias copy per
//! 6x16 tile.
//!
//! No depth or column blocking: each row tile runs over every panel at the
//! full depth, its accumulators starting from the bias, so partial sums
//! never round-trip through `C`, and the weights stream through the caches
//! once per row tile (as XNNPACK's GEMMs do). Cutting the depth into
//! L1-sized slices with L2-sized column groups measured 8-12% slower on
//! every GEMM deeper than 512 (Inception v3's 3x3 convs of depth 2592 and
//! 4032, 1x1 convs of depth 768-1024) and no faster on the shallow ones:
//! the row block the callers hand over (~240 rows) times a 512-deep slice
//! fills L2 on its own, so the "L2-resident" weight group was not. Blocks
//! sized to stay in L2 (192 KiB of rows against 64 KiB groups of panels)
//! measured 4-8% slower than no blocking at 1 thread on the same layers.

use crate::activation::ClampF32;
use crate::optimized::isa::IsaLevel;
#[cfg(target_arch = "aarch64")]
use crate::optimized::isa::Neon;
#[cfg(target_arch = "x86_64")]
use crate::optimized::isa::{Avx2Fma, Avx512};

/// Columns per packed panel (two AVX2 registers).
pub const NR: usize = 16;

/// Weights `[n, k]` packed into `ceil(n / 16)` panels of `k × 16` floats.
#[derive(Clone, Debug)]
pub struct PackedWeightsF32 {
    n: usize,
    k: usize,
    /// Backing store; the panels start at `offset`, 64-byte aligned so each
    /// 16-float row sits in one cache line.
    buf: Vec<f32>,
    offset: usize,
}

impl PackedWeightsF32 {
    /// Pack row-major `weights[n][k]`.
    pub fn pack(weights: &[f32], n: usize, k: usize) -> PackedWeightsF32 {
        let mut packed = PackedWeightsF32::empty();
        packed.repack(weights, n, k);
        packed
    }

    /// No weights (`n = k = 0`): a buffer for [`Self::repack`] and
    /// [`Self::repack_kn`].
    pub fn empty() -> PackedWeightsF32 {
        PackedWeightsF32 { n: 0, k: 0, buf: Vec::new(), offset: 0 }
    }

    /// [`Self::pack`] into this buffer (a matrix product packs its
    /// right-hand side on every invoke).
    pub fn repack(&mut self, weights: &[f32], n: usize, k: usize) {
        assert!(weights.len() >= n * k, "weights: {} values for n={n} k={k}", weights.len());
        let data = self.zeroed(n, k);
        for (j, panel) in data.chunks_exact_mut((k * NR).max(1)).enumerate() {
            for c in 0..NR.min(n - j * NR) {
                let row = &weights[(j * NR + c) * k..(j * NR + c + 1) * k];
                for (step, &v) in panel.chunks_exact_mut(NR).zip(row) {
                    step[c] = v;
                }
            }
        }
    }

    /// Pack `weights` stored depth-major, `[k][n]` (a matrix product's
    /// right-hand side as it comes), into the panels [`Self::pack`] makes
    /// of its transpose. Each depth step of a panel is then 16 adjacent
    /// values of one row: a copy, not a gather.
    pub fn repack_kn(&mut self, weights: &[f32], k: usize, n: usize) {
        assert!(weights.len() >= n * k, "weights: {} values for k={k} n={n}", weights.len());
        let data = self.zeroed(n, k);
        for (j, panel) in data.chunks_exact_mut((k * NR).max(1)).enumerate() {
            let cols = NR.min(n - j * NR);
            for (p, step) in panel.chunks_exact_mut(NR).enumerate() {
                step[..cols].copy_from_slice(&weights[p * n + j * NR..][..cols]);
            }
        }
    }

    /// Zeroed panels for `n x k` weights, 64-byte aligned, as the one
    /// mutable slice.
    fn zeroed(&mut self, n: usize, k: usize) -> &mut [f32] {
        let len = n.div_ceil(NR) * k * NR;
        self.buf.clear();
        self.buf.resize(len + NR, 0.0);
        let misalign = (self.buf.as_ptr() as usize % 64) / 4;
        self.offset = (NR - misalign) % NR;
        (self.n, self.k) = (n, k);
        &mut self.buf[self.offset..self.offset + len]
    }

    /// Output channels (columns of C).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Depth.
    pub fn k(&self) -> usize {
        self.k
    }

    fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// The panels as the kernels read them (for tests).
    #[cfg(test)]
    pub(crate) fn panel_data(&self) -> &[f32] {
        &self.buf[self.offset..self.offset + self.panels() * self.k * NR]
    }
}

/// `c[i][o] = clamp(sum_p a[i][p] * W[o][p] + bias[o])` for `i < m`, `o < n`.
///
/// `a` is `m` rows of `k` values with row stride `lda`; `c` is `m` rows of
/// `n = packed.n()` values with row stride `ldc` (other values of `c` are
/// left alone). `isa` is clamped to what the CPU supports.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32(
    isa: IsaLevel,
    m: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    packed: &PackedWeightsF32,
    bias: Option<&[f32]>,
    clamp: ClampF32,
    c: &mut [f32],
    ldc: usize,
) {
    let n = packed.n;
    assert_eq!(k, packed.k, "gemm depth {k} but weights packed with depth {}", packed.k);
    if m == 0 || n == 0 {
        return;
    }
    assert!(lda >= k && ldc >= n, "strides lda={lda} (k={k}), ldc={ldc} (n={n})");
    assert!(a.len() >= (m - 1) * lda + k, "a: {} values for m={m} lda={lda} k={k}", a.len());
    assert!(c.len() >= (m - 1) * ldc + n, "c: {} values for m={m} ldc={ldc} n={n}", c.len());
    if let Some(b) = bias {
        assert!(b.len() >= n, "bias: {} values for n={n}", b.len());
    }
    if k == 0 {
        for i in 0..m {
            for (o, v) in c[i * ldc..i * ldc + n].iter_mut().enumerate() {
                *v = clamp.apply(bias.map_or(0.0, |b| b[o]));
            }
        }
        return;
    }
    let rows = ARows::new(isa, m, a, lda, &[], &[0], k);
    dispatch(isa, m, rows, packed, bias, clamp, c, ldc)
}

/// [`gemm_f32`] over gathered rows: row `i`'s depth is, for each `base` in
/// `bases`, the `seg` values `a[starts[i] + base ..]`, in order
/// (`bases.len() * seg` must equal the packed depth). A convolution reads
/// its output pixels' receptive fields this way straight from the (padded)
/// input: one start per pixel, one base per filter row.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32_gather(
    isa: IsaLevel,
    m: usize,
    a: &[f32],
    starts: &[usize],
    bases: &[usize],
    seg: usize,
    packed: &PackedWeightsF32,
    bias: Option<&[f32]>,
    clamp: ClampF32,
    c: &mut [f32],
    ldc: usize,
) {
    let (n, k) = (packed.n, packed.k);
    assert_eq!(bases.len() * seg, k, "{} segments of {seg} for depth {k}", bases.len());
    assert!(k >= 1, "gathered rows of depth 0");
    if m == 0 || n == 0 {
        return;
    }
    assert!(starts.len() >= m, "{} row starts for {m} rows", starts.len());
    let rows = ARows::new(isa, m, a, 0, starts, bases, seg);
    assert!(rows.holds(m), "a: {} values for {m} gathered rows", a.len());
    assert!(ldc >= n && c.len() >= (m - 1) * ldc + n, "c: {} values for m={m} ldc={ldc} n={n}", c.len());
    if let Some(b) = bias {
        assert!(b.len() >= n, "bias: {} values for n={n}", b.len());
    }
    dispatch(isa, m, rows, packed, bias, clamp, c, ldc)
}

/// [`drive`] with the best micro-kernel family `isa` allows on this CPU.
#[allow(clippy::too_many_arguments)]
fn dispatch(
    isa: IsaLevel,
    m: usize,
    rows: ARows,
    packed: &PackedWeightsF32,
    bias: Option<&[f32]>,
    clamp: ClampF32,
    c: &mut [f32],
    ldc: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(token) = Avx512::new(isa) {
        return drive(token, m, rows, packed, bias, clamp, c, ldc);
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(token) = Avx2Fma::new(isa) {
        return drive(token, m, rows, packed, bias, clamp, c, ldc);
    }
    #[cfg(target_arch = "aarch64")]
    if let Some(token) = Neon::new(isa) {
        return drive(token, m, rows, packed, bias, clamp, c, ldc);
    }
    let _ = isa;
    drive(Scalar, m, rows, packed, bias, clamp, c, ldc)
}

/// The largest of `values` (0 for none). A gathered block's row starts
/// are checked once per call this way; the baseline x86-64 build has no
/// 64-bit vector max (SSE2), and its emulation took 5% of a first conv.
fn max_of(isa: IsaLevel, values: &[usize]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if let Some(token) = Avx512::new(isa) {
        return avx512::max_of(token, values);
    }
    let _ = isa;
    values.iter().copied().max().unwrap_or(0)
}

/// Bias for the run's columns (padded with zeros to whole panels) and the
/// clamp.
#[derive(Clone, Copy)]
struct Epilogue<'a> {
    /// `16 * panels` values: column `col` of the run adds `bias[col]`.
    bias: &'a [f32],
    clamp: ClampF32,
}

/// The rows of A one kernel call reads: row `r` starts at `starts[r]`, or
/// at `r * lda` when `starts` is empty, and its depth is the segments
/// `a[start + base ..][..seg]` for each `base` in `bases`, in order.
/// A plain matrix is one segment (`bases = [0]`, `seg = k`); a
/// convolution reads its output pixels' receptive fields straight from
/// the input image, one start per pixel and one segment per filter row
/// (no im2col copy).
#[derive(Clone, Copy)]
struct ARows<'a> {
    a: &'a [f32],
    lda: usize,
    starts: &'a [usize],
    bases: &'a [usize],
    seg: usize,
    /// How many rows there are, and one past the furthest value they read
    /// (found once, by [`ARows::new`]: a block's kernel call and each of
    /// its tiles check against them in O(1)).
    rows: usize,
    reach: usize,
}

impl<'a> ARows<'a> {
    /// `m` rows: `lda` apart (`starts` empty) or at `starts[..m]`.
    fn new(
        isa: IsaLevel,
        m: usize,
        a: &'a [f32],
        lda: usize,
        starts: &'a [usize],
        bases: &'a [usize],
        seg: usize,
    ) -> ARows<'a> {
        let last_start = match starts {
            [] => m.saturating_sub(1).checked_mul(lda),
            starts => Some(max_of(isa, &starts[..m])),
        };
        let last_base = bases.iter().copied().max().unwrap_or(0);
        // (An overflow reaches past any slice: `holds` is then false.)
        let reach = last_start.and_then(|v| v.checked_add(last_base)?.checked_add(seg)).unwrap_or(usize::MAX);
        ARows { a, lda, starts, bases, seg, rows: m, reach }
    }

    fn depth(&self) -> usize {
        self.bases.len() * self.seg
    }

    #[inline(always)]
    fn start(&self, r: usize) -> usize {
        if self.starts.is_empty() {
            r * self.lda
        } else {
            self.starts[r]
        }
    }

    /// The rows from row `i` on (`i < self.rows`).
    #[inline(always)]
    fn skip(&self, i: usize) -> Self {
        let rows = self.rows - i;
        match self.starts {
            [] => ARows { a: &self.a[i * self.lda..], rows, reach: self.reach - i * self.lda, ..*self },
            starts => ARows { starts: &starts[i..], rows, ..*self },
        }
    }

    /// Whether rows `0..mr` exist and lie inside `a`.
    fn holds(&self, mr: usize) -> bool {
        mr <= self.rows && (self.starts.is_empty() || self.starts.len() >= mr) && self.reach <= self.a.len()
    }
}

/// One micro-kernel family: computes a block of `m` rows of a run of
/// consecutive panels (`cols` columns: whole panels but perhaps the last)
/// over the full depth `a.depth()`, in tiles of up to `MR` rows
/// ([`row_tiles`]). Looping over the panels inside the kernel keeps the
/// row pointers and constants in registers, which matters for shallow
/// GEMMs (depth 16: a 6x16 tile is only 96 FMA cycles); checking the
/// bounds once per block rather than per tile matters for them too (a
/// first conv's 6x32 tiles of depth 27 spent 14% of their time there).
///
/// - `a`: the block's rows ([`ARows`]).
/// - `w`: panel `j` of the run is `w[j * wstride ..][..depth * NR]`.
/// - `c`: row `r` is `c[r * ldc .. r * ldc + cols]`, overwritten.
trait MicroKernel: Copy {
    const MR: usize;
    /// `gemv`: the whole GEMM is this one row, so a kernel that sums in
    /// another order (the 4-way unrolled GEMV) may take it; a 1-row tile
    /// of a larger GEMM must sum like the other tiles, so that a row's
    /// result does not depend on how the rows were split between threads.
    #[allow(clippy::too_many_arguments)]
    fn block(
        self,
        m: usize,
        gemv: bool,
        cols: usize,
        a: ARows,
        w: &[f32],
        wstride: usize,
        epilogue: Epilogue,
        c: &mut [f32],
        ldc: usize,
    );
}

/// The bounds the SIMD kernels' raw loads and stores rely on, checked
/// once per [`MicroKernel::block`] call: the `m` rows of `a`, every panel
/// of the run at full depth, `m` rows of `c` and 16 bias values per panel.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
fn check_block(m: usize, cols: usize, a: ARows, w: &[f32], wstride: usize, epilogue: Epilogue, c: &[f32], ldc: usize) {
    let (panels, kc) = (cols.div_ceil(NR), a.depth());
    assert!(m >= 1 && cols >= 1 && kc >= 1 && wstride >= kc * NR);
    assert!(a.holds(m) && w.len() >= (panels - 1) * wstride + kc * NR);
    assert!(c.len() >= (m - 1) * ldc + cols);
    assert!(epilogue.bias.len() >= panels * NR);
}

/// `c = clamp(A · Wᵀ + bias)` for the `m` rows of `a` (depth `packed.k()`).
#[allow(clippy::too_many_arguments)]
fn drive<K: MicroKernel>(
    kern: K,
    m: usize,
    a: ARows,
    packed: &PackedWeightsF32,
    bias: Option<&[f32]>,
    clamp: ClampF32,
    c: &mut [f32],
    ldc: usize,
) {
    let (n, k) = (packed.n, packed.k);
    let panels = packed.panels();
    // Bias padded to whole panels, so every panel's epilogue reads 16
    // (on the stack for up to 256 channels: small calls, a GEMV or a
    // short row block, skip the allocation).
    let mut on_stack = [0.0f32; 256];
    let mut on_heap = Vec::new();
    let bias_pad: &mut [f32] = if panels * NR <= on_stack.len() {
        &mut on_stack[..panels * NR]
    } else {
        on_heap.resize(panels * NR, 0.0);
        &mut on_heap
    };
    if let Some(b) = bias {
        bias_pad[..n].copy_from_slice(&b[..n]);
    }
    let bias_pad = &*bias_pad;
    assert_eq!(a.depth(), k, "rows of depth {} for weights of depth {k}", a.depth());
    let weights = &packed.buf[packed.offset..];
    // Few rows against many weights (a 7x7 layer's 49 pixels, 1024 deep,
    // 1024 wide: 4 MiB of weights): every row tile would stream all the
    // weights from L3. Then the panels go in groups that stay in L2, each
    // group over all the row tiles (the rows stay in L2 too). Every value
    // is still one tile's sum over the full depth: the same bits.
    // Whole pairs of panels, the AVX-512 kernel's tile: a deep layer's
    // group of one panel (depth 2592: 166 KiB a panel) ran its rows at
    // half the FMAs per load, slower than not grouping at all (Inception
    // v3's 35x35x288 -> 384 stride 2 at 2 threads, whose 36-row blocks
    // were grouped: 1.65 ms, 1.17 in pairs; LiteRT 1.16).
    let group = (GROUP_WEIGHT_BYTES / (k * NR * 4).max(1)).max(2) & !1;
    let grouped = panels > group && m > K::MR && m * k * 4 <= GROUP_ROW_BYTES;
    let group = if grouped { group } else { panels };
    for g0 in (0..panels).step_by(group) {
        let col = g0 * NR;
        let cols = (n - col).min(group * NR);
        let epilogue = Epilogue { bias: &bias_pad[col..], clamp };
        let w = &weights[g0 * k * NR..];
        kern.block(m, m == 1, cols, a, w, k * NR, epilogue, &mut c[col..], ldc);
    }
}

/// Weights per group of panels when the panels are grouped (see [`drive`]):
/// a quarter of a 1 MiB L2, half of a 512 KiB one.
const GROUP_WEIGHT_BYTES: usize = 256 * 1024;

/// Largest row block (rows x depth floats) the panels are grouped for: it
/// is read once per group, so it must stay in L2 too.
const GROUP_ROW_BYTES: usize = 512 * 1024;

/// The row counts of the tiles an `m`-row block is cut into: `mr`-row
/// tiles and the remainder, except that a remainder of fewer than `mr - 2`
/// rows is spread over the block where that leaves every tile `mr - 1` or
/// `mr` rows (25 rows as five 5-row tiles, not four 6-row tiles and a 1-row
/// one). A tile is paced by its FMAs, about one cycle per row and depth
/// step but no fewer than four (the FMA latency, with two accumulators a
/// row), so 6+6+6+6+1 rows cost about what 5+5+5+5+5 do, and a thread can
/// be handed any number of rows without a short tile costing it a full one.
pub(crate) fn row_tiles(m: usize, mr: usize) -> impl Iterator<Item = usize> {
    let tiles = m.div_ceil(mr);
    let last = m - tiles.saturating_sub(1) * mr;
    let spread = last + 2 < mr && tiles * (mr - 1) <= m;
    (0..tiles).map(move |t| match spread {
        // `m - tiles * (mr - 1)` tiles of `mr` rows, then `mr - 1`.
        true => mr - 1 + usize::from(t < m - tiles * (mr - 1)),
        false if t + 1 < tiles => mr,
        false => last,
    })
}

/// Portable micro-kernels, `1..=4` rows × 16 columns.
#[derive(Clone, Copy)]
struct Scalar;

impl MicroKernel for Scalar {
    const MR: usize = 4;
    fn block(
        self,
        m: usize,
        _gemv: bool,
        cols: usize,
        a: ARows,
        w: &[f32],
        wstride: usize,
        epilogue: Epilogue,
        c: &mut [f32],
        ldc: usize,
    ) {
        let kc = a.depth();
        let mut i = 0;
        for mr in row_tiles(m, Self::MR) {
            let a = a.skip(i);
            for (j, col) in (0..cols).step_by(NR).enumerate() {
                let nr = NR.min(cols - col);
                let w = &w[j * wstride..j * wstride + kc * NR];
                let e = Epilogue { bias: &epilogue.bias[col..col + NR], clamp: epilogue.clamp };
                let c = &mut c[i * ldc + col..];
                match mr {
                    1 => f32_gemm_mx16_scalar::<1>(nr, a, w, e, c, ldc),
                    2 => f32_gemm_mx16_scalar::<2>(nr, a, w, e, c, ldc),
                    3 => f32_gemm_mx16_scalar::<3>(nr, a, w, e, c, ldc),
                    4 => f32_gemm_mx16_scalar::<4>(nr, a, w, e, c, ldc),
                    _ => unreachable!("scalar gemm tile of {mr} rows"),
                }
            }
            i += mr;
        }
    }
}

/// `f32_gemm_{M}x16_scalar`: `M` rows × 16 columns with plain arrays.
#[inline]
fn f32_gemm_mx16_scalar<const M: usize>(nr: usize, a: ARows, w: &[f32], epilogue: Epilogue, c: &mut [f32], ldc: usize) {
    let mut acc = [[0.0f32; NR]; M];
    let mut wrows = w[..a.depth() * NR].chunks_exact(NR);
    for &base in a.bases {
        let rows: [&[f32]; M] = std::array::from_fn(|r| &a.a[a.start(r) + base..a.start(r) + base + a.seg]);
        for (p, wrow) in (0..a.seg).zip(&mut wrows) {
            let wrow: &[f32; NR] = wrow.try_into().unwrap();
            let x: [f32; M] = std::array::from_fn(|r| rows[r][p]);
            for r in 0..M {
                for cc in 0..NR {
                    acc[r][cc] += x[r] * wrow[cc];
                }
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let out = &mut c[r * ldc..r * ldc + nr];
        for ((o, &v), &b) in out.iter_mut().zip(row).zip(epilogue.bias) {
            *o = epilogue.clamp.apply(v + b);
        }
    }
}

/// `$kernel::<M, GATHER>(args)` for a tile of `$mr` rows (1..=6, more
/// taken as 6; or the listed counts, more taken as the last) whose `a`
/// has several segments (`$gather`) or one: plain matrices get their own
/// instances, without the segment loop's bookkeeping. The x86 kernel
/// families share it.
#[cfg(target_arch = "x86_64")]
macro_rules! tile_by_rows {
    ($kernel:ident, $mr:expr, $gather:expr, $args:tt) => {
        tile_by_rows!($kernel, $mr, $gather, $args, [1 2 3 4 5] 6)
    };
    ($kernel:ident, $mr:expr, $gather:expr, $args:tt, [$($m:literal)*] $last:literal) => {
        match ($mr, $gather) {
            $(
                ($m, false) => $kernel::<$m, false> $args,
                ($m, true) => $kernel::<$m, true> $args,
            )*
            (_, false) => $kernel::<$last, false> $args,
            (_, true) => $kernel::<$last, true> $args,
        }
    };
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
// Index loops over fixed register arrays are deliberate: they unroll.
#[allow(clippy::needless_range_loop)]
mod avx512;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::{check_block, row_tiles, ARows, Epilogue, MicroKernel, NR};
    use crate::activation::ClampF32;
    use crate::optimized::isa::Avx2Fma;
    use std::arch::x86_64::*;

    impl MicroKernel for Avx2Fma {
        const MR: usize = 6;
        fn block(
            self,
            m: usize,
            gemv: bool,
            cols: usize,
            a: ARows,
            w: &[f32],
            wstride: usize,
            epilogue: Epilogue,
            c: &mut [f32],
            ldc: usize,
        ) {
            check_block(m, cols, a, w, wstride, epilogue, c, ldc);
            let gather = a.bases.len() > 1;
            let mut i = 0;
            for mr in row_tiles(m, Self::MR) {
                let (a, c) = (a.skip(i), &mut c[i * ldc..]);
                // SAFETY: `self` is an `Avx2Fma` token, which exists only
                // when the CPU supports AVX2 and FMA; the block's bounds,
                // asserted above, hold for each of its row tiles.
                unsafe {
                    if m == 1 && gemv {
                        return f32_gemm_1x16_avx2_fma(cols, a, w, wstride, epilogue, c);
                    }
                    tile_by_rows!(f32_gemm_mx16_avx2_fma, mr, gather, (cols, a, w, wstride, epilogue, c, ldc))
                }
                i += mr;
            }
        }
    }

    /// Store the first `nr` columns of a row held in two registers.
    ///
    /// # Safety
    /// `p` must be valid for `nr` writes, `nr <= 16`; AVX must be available.
    #[inline(always)]
    unsafe fn store_row(p: *mut f32, nr: usize, v0: __m256, v1: __m256) {
        // SAFETY: the caller guarantees `nr` writable floats at `p`; the
        // short case goes through a local buffer.
        unsafe {
            if nr == NR {
                _mm256_storeu_ps(p, v0);
                _mm256_storeu_ps(p.add(8), v1);
            } else {
                let mut tmp = [0.0f32; NR];
                _mm256_storeu_ps(tmp.as_mut_ptr(), v0);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(8), v1);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), p, nr);
            }
        }
    }

    /// Add the bias to a row, clamp it and store its first `nr` columns.
    ///
    /// # Safety
    /// As [`store_row`], and `bias` must hold 16 values.
    #[inline(always)]
    unsafe fn finish_row(p: *mut f32, nr: usize, mut v0: __m256, mut v1: __m256, bias: *const f32, clamp: ClampF32) {
        // SAFETY: the caller guarantees `nr` writable floats at `p` and 16
        // readable bias values.
        unsafe {
            let lo = _mm256_set1_ps(clamp.min);
            let hi = _mm256_set1_ps(clamp.max);
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(bias));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(bias.add(8)));
            // max(lo, v) / min(hi, v) return `v` when it is NaN, like
            // `ClampF32::apply`.
            v0 = _mm256_min_ps(hi, _mm256_max_ps(lo, v0));
            v1 = _mm256_min_ps(hi, _mm256_max_ps(lo, v1));
            store_row(p, nr, v0, v1);
        }
    }

    /// `f32_gemm_{M}x16_avx2_fma`, `M` in 1..=6: 2M accumulators, over
    /// each panel of the run in turn. `GATHER`: `a` has several segments
    /// (else exactly one).
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `a` must hold its `M` rows
    /// ([`ARows::holds`]), `w` `(panels-1)*wstride + depth*16` values, `c`
    /// `(M-1)*ldc + cols`, the epilogue's bias `16*panels` (`panels =
    /// ceil(cols / 16)`).
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn f32_gemm_mx16_avx2_fma<const M: usize, const GATHER: bool>(
        cols: usize,
        a: ARows,
        w: &[f32],
        wstride: usize,
        epilogue: Epilogue,
        c: &mut [f32],
        ldc: usize,
    ) {
        // SAFETY: the caller guarantees the slice lengths documented above,
        // so every segment row pointer `a + start(r) + base` has `seg` readable
        // values, panel `j` at `w + j*wstride` has `depth` rows of 16,
        // `c + r*ldc + col` has `nr` writable values and the bias 16 from
        // `col`.
        let rows = a;
        let ARows { a, bases, seg, .. } = rows;
        // Each row's start, once for all panels and segments.
        let starts: [usize; M] = std::array::from_fn(|r| rows.start(r));
        unsafe {
            let plain: [*const f32; M] = std::array::from_fn(|r| a.as_ptr().add(starts[r] + bases[0]));
            // One tile: rows × columns `col..col + nr`. Expanded twice, with
            // `nr` the constant 16 for full panels so their loads and stores
            // need no length checks (and no calls that would spill the
            // accumulators), and once for a short last panel.
            macro_rules! tile {
                ($col:expr, $nr:expr) => {{
                    let (col, nr): (usize, usize) = ($col, $nr);
                    let cp = c.as_mut_ptr().add(col);
                    // The accumulators start from the bias (as XNNPACK's
                    // packed weights do), so the epilogue only clamps.
                    let bias = epilogue.bias.as_ptr().add(col);
                    let mut acc0 = [_mm256_loadu_ps(bias); M];
                    let mut acc1 = [_mm256_loadu_ps(bias.add(8)); M];
                    let mut wp = w.as_ptr().add(col / NR * wstride);
                    // One depth run of the rows at `$ap` against the next
                    // `seg` weight rows.
                    macro_rules! depth_run {
                        ($ap:expr) => {
                            let ap: &[*const f32; M] = $ap;
                            for p in 0..seg {
                                let b0 = _mm256_loadu_ps(wp);
                                let b1 = _mm256_loadu_ps(wp.add(8));
                                for r in 0..M {
                                    let x = _mm256_broadcast_ss(&*ap[r].add(p));
                                    acc0[r] = _mm256_fmadd_ps(x, b0, acc0[r]);
                                    acc1[r] = _mm256_fmadd_ps(x, b1, acc1[r]);
                                }
                                wp = wp.add(NR);
                            }
                        };
                    }
                    if !GATHER {
                        // A plain matrix: the row pointers stay put across panels.
                        depth_run!(&plain);
                    } else {
                        for &base in bases {
                            depth_run!(&std::array::from_fn(|r| a.as_ptr().add(starts[r] + base)));
                        }
                    }
                    // max(lo, v) / min(hi, v) return `v` when it is NaN,
                    // like `ClampF32::apply`.
                    let lo = _mm256_broadcast_ss(&epilogue.clamp.min);
                    let hi = _mm256_broadcast_ss(&epilogue.clamp.max);
                    for r in 0..M {
                        acc0[r] = _mm256_min_ps(hi, _mm256_max_ps(lo, acc0[r]));
                        acc1[r] = _mm256_min_ps(hi, _mm256_max_ps(lo, acc1[r]));
                    }
                    for r in 0..M {
                        store_row(cp.add(r * ldc), nr, acc0[r], acc1[r]);
                    }
                }};
            }
            let full = cols / NR * NR;
            let mut col = 0;
            while col < full {
                tile!(col, NR);
                col += NR;
            }
            if col < cols {
                tile!(col, cols - col);
            }
        }
    }

    /// `f32_gemm_1x16_avx2_fma`: one row (GEMV), depth unrolled 4 ways into
    /// 8 accumulators so the FMA latency does not serialise the loop.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `a` must hold its row
    /// ([`ARows::holds`]), `w` `(panels-1)*wstride + depth*16` values, `c`
    /// `cols`, the epilogue's bias `16*panels`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn f32_gemm_1x16_avx2_fma(
        cols: usize,
        a: ARows,
        w: &[f32],
        wstride: usize,
        epilogue: Epilogue,
        c: &mut [f32],
    ) {
        // SAFETY: as documented: each segment's `seg` values readable,
        // each panel's `depth*16` values readable, `c[..cols]` writable.
        unsafe {
            let mut col = 0;
            while col < cols {
                let nr = NR.min(cols - col);
                let mut wp = w.as_ptr().add(col / NR * wstride);
                let mut s = [_mm256_setzero_ps(); 8];
                for &base in a.bases {
                    let ap = a.a.as_ptr().add(a.start(0) + base);
                    let mut p = 0;
                    while p + 4 <= a.seg {
                        for u in 0..4 {
                            let x = _mm256_broadcast_ss(&*ap.add(p + u));
                            s[2 * u] = _mm256_fmadd_ps(x, _mm256_loadu_ps(wp.add(u * NR)), s[2 * u]);
                            s[2 * u + 1] = _mm256_fmadd_ps(x, _mm256_loadu_ps(wp.add(u * NR + 8)), s[2 * u + 1]);
                        }
                        wp = wp.add(4 * NR);
                        p += 4;
                    }
                    while p < a.seg {
                        let x = _mm256_broadcast_ss(&*ap.add(p));
                        s[0] = _mm256_fmadd_ps(x, _mm256_loadu_ps(wp), s[0]);
                        s[1] = _mm256_fmadd_ps(x, _mm256_loadu_ps(wp.add(8)), s[1]);
                        wp = wp.add(NR);
                        p += 1;
                    }
                }
                let v0 = _mm256_add_ps(_mm256_add_ps(s[0], s[2]), _mm256_add_ps(s[4], s[6]));
                let v1 = _mm256_add_ps(_mm256_add_ps(s[1], s[3]), _mm256_add_ps(s[5], s[7]));
                finish_row(c.as_mut_ptr().add(col), nr, v0, v1, epilogue.bias.as_ptr().add(col), epilogue.clamp);
                col += NR;
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
pub(crate) mod neon {
    use super::{check_block, row_tiles, ARows, Epilogue, MicroKernel, NR};
    use crate::optimized::isa::Neon;
    use std::arch::aarch64::*;

    impl MicroKernel for Neon {
        const MR: usize = 6;
        fn block(
            self,
            m: usize,
            gemv: bool,
            cols: usize,
            a: ARows,
            w: &[f32],
            wstride: usize,
            epilogue: Epilogue,
            c: &mut [f32],
            ldc: usize,
        ) {
            check_block(m, cols, a, w, wstride, epilogue, c, ldc);
            let mut i = 0;
            for mr in row_tiles(m, Self::MR) {
                let (a, c) = (a.skip(i), &mut c[i * ldc..]);
                // SAFETY: `self` is a `Neon` token, made only on an aarch64
                // CPU with Advanced SIMD; the block's bounds, asserted above,
                // hold for each of its row tiles.
                unsafe {
                    match mr {
                        1 if gemv => f32_gemm_1x16_neon(cols, a, w, wstride, epilogue, c),
                        1 => f32_gemm_mx16_neon::<1>(cols, a, w, wstride, epilogue, c, ldc),
                        2 => f32_gemm_mx16_neon::<2>(cols, a, w, wstride, epilogue, c, ldc),
                        3 => f32_gemm_mx16_neon::<3>(cols, a, w, wstride, epilogue, c, ldc),
                        4 => f32_gemm_mx16_neon::<4>(cols, a, w, wstride, epilogue, c, ldc),
                        5 => f32_gemm_mx16_neon::<5>(cols, a, w, wstride, epilogue, c, ldc),
                        _ => f32_gemm_mx16_neon::<6>(cols, a, w, wstride, epilogue, c, ldc),
                    }
                }
                i += mr;
            }
        }
    }

    /// Clamp a row of four registers ([`clamp4`]) and store its first `nr`
    /// columns.
    ///
    /// # Safety
    /// `p` must be valid for `nr` writes, `nr <= 16`.
    #[inline(always)]
    unsafe fn finish_row(p: *mut f32, nr: usize, v: [float32x4_t; 4], lo: float32x4_t, hi: float32x4_t) {
        let v = v.map(|x| clamp4(x, lo, hi));
        // SAFETY: the caller guarantees `nr` writable floats at `p`; the
        // short case goes through a local buffer.
        unsafe {
            if nr == NR {
                for (q, x) in v.into_iter().enumerate() {
                    vst1q_f32(p.add(4 * q), x);
                }
            } else {
                let mut tmp = [0.0f32; NR];
                for (q, x) in v.into_iter().enumerate() {
                    vst1q_f32(tmp.as_mut_ptr().add(4 * q), x);
                }
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), p, nr);
            }
        }
    }

    /// `ClampF32::apply` on 4 lanes: `x < lo ? lo : x`, then `> hi ? hi`,
    /// as compare-and-select. (`fmax`/`fmin` would turn -0.0 into +0.0
    /// against a 0.0 bound, where the reference and AVX2's `max`/`min`
    /// keep -0.0; a NaN fails both compares and passes through.)
    #[inline(always)]
    pub(crate) fn clamp4(x: float32x4_t, lo: float32x4_t, hi: float32x4_t) -> float32x4_t {
        // SAFETY: register-only NEON instructions; this module is only
        // reached with a `Neon` token.
        unsafe {
            let v = vbslq_f32(vcltq_f32(x, lo), lo, x);
            vbslq_f32(vcgtq_f32(v, hi), hi, v)
        }
    }

    /// `f32_gemm_{M}x16_neon`, `M` in 1..=6: 4M accumulators, over each
    /// panel of the run in turn; each depth step loads the panel's 16
    /// weights once and broadcasts one value per row (`ld1r`).
    ///
    /// # Safety
    /// `a` must hold its `M` rows ([`ARows::holds`]), `w` `(panels-1)*wstride
    /// + depth*16` values, `c` `(M-1)*ldc + cols`, the epilogue's bias
    /// `16*panels` (`panels = ceil(cols / 16)`).
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn f32_gemm_mx16_neon<const M: usize>(
        cols: usize,
        a: ARows,
        w: &[f32],
        wstride: usize,
        epilogue: Epilogue,
        c: &mut [f32],
        ldc: usize,
    ) {
        let starts: [usize; M] = std::array::from_fn(|r| a.start(r));
        let lo = vdupq_n_f32(epilogue.clamp.min);
        let hi = vdupq_n_f32(epilogue.clamp.max);
        // SAFETY: the caller guarantees the slice lengths documented above,
        // so every segment row pointer `a + start(r) + base` has `seg`
        // readable values, panel `j` at `w + j*wstride` has `depth` rows of
        // 16, `c + r*ldc + col` has `nr` writable values and the bias 16
        // from `col`.
        unsafe {
            let mut col = 0;
            while col < cols {
                let nr = NR.min(cols - col);
                let bias = epilogue.bias.as_ptr().add(col);
                let b: [float32x4_t; 4] = std::array::from_fn(|q| vld1q_f32(bias.add(4 * q)));
                let mut acc = [b; M];
                let mut wp = w.as_ptr().add(col / NR * wstride);
                for &base in a.bases {
                    let ap: [*const f32; M] = std::array::from_fn(|r| a.a.as_ptr().add(starts[r] + base));
                    for p in 0..a.seg {
                        let wv: [float32x4_t; 4] = std::array::from_fn(|q| vld1q_f32(wp.add(4 * q)));
                        for r in 0..M {
                            let x = vld1q_dup_f32(ap[r].add(p));
                            for q in 0..4 {
                                acc[r][q] = vfmaq_f32(acc[r][q], x, wv[q]);
                            }
                        }
                        wp = wp.add(NR);
                    }
                }
                for (r, row) in acc.into_iter().enumerate() {
                    finish_row(c.as_mut_ptr().add(r * ldc + col), nr, row, lo, hi);
                }
                col += NR;
            }
        }
    }

    /// `f32_gemm_1x16_neon`: one row (GEMV), depth unrolled 4 ways into 16
    /// accumulators so the FMA latency does not serialise the loop (summed
    /// in the order of the AVX2 twin).
    ///
    /// # Safety
    /// `a` must hold its row ([`ARows::holds`]), `w` `(panels-1)*wstride +
    /// depth*16` values, `c` `cols`, the epilogue's bias `16*panels`.
    pub(super) unsafe fn f32_gemm_1x16_neon(
        cols: usize,
        a: ARows,
        w: &[f32],
        wstride: usize,
        epilogue: Epilogue,
        c: &mut [f32],
    ) {
        let lo = vdupq_n_f32(epilogue.clamp.min);
        let hi = vdupq_n_f32(epilogue.clamp.max);
        // SAFETY: as documented: each segment's `seg` values readable, each
        // panel's `depth*16` values readable, `c[..cols]` writable.
        unsafe {
            let mut col = 0;
            while col < cols {
                let nr = NR.min(cols - col);
                let mut wp = w.as_ptr().add(col / NR * wstride);
                let mut s = [[vdupq_n_f32(0.0); 4]; 4];
                for &base in a.bases {
                    let ap = a.a.as_ptr().add(a.start(0) + base);
                    let mut p = 0;
                    while p + 4 <= a.seg {
                        for (u, su) in s.iter_mut().enumerate() {
                            let x = vld1q_dup_f32(ap.add(p + u));
                            for (q, sq) in su.iter_mut().enumerate() {
                                *sq = vfmaq_f32(*sq, x, vld1q_f32(wp.add(u * NR + 4 * q)));
                            }
                        }
                        wp = wp.add(4 * NR);
                        p += 4;
                    }
                    while p < a.seg {
                        let x = vld1q_dup_f32(ap.add(p));
                        for (q, sq) in s[0].iter_mut().enumerate() {
                            *sq = vfmaq_f32(*sq, x, vld1q_f32(wp.add(4 * q)));
                        }
                        wp = wp.add(NR);
                        p += 1;
                    }
                }
                let bias = epilogue.bias.as_ptr().add(col);
                let v: [float32x4_t; 4] = std::array::from_fn(|q| {
                    let sum = vaddq_f32(vaddq_f32(s[0][q], s[1][q]), vaddq_f32(s[2][q], s[3][q]));
                    vaddq_f32(sum, vld1q_f32(bias.add(4 * q)))
                });
                finish_row(c.as_mut_ptr().add(col), nr, v, lo, hi);
                col += NR;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::{assert_close, Rng};
    use crate::reference::fully_connected::fully_connected_f32;

    /// Reference result and error scale (`sum |a||w| + |bias|`) for a GEMM
    /// written as a FULLY_CONNECTED.
    fn reference(
        a: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        m: usize,
        k: usize,
        n: usize,
        clamp: ClampF32,
    ) -> (Vec<f32>, Vec<f32>) {
        let mut out = vec![0.0; m * n];
        fully_connected_f32(a, w, bias, &mut out, m, k, n, clamp);
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
        let mut scale = vec![0.0; m * n];
        let ab = bias.map(abs);
        fully_connected_f32(&abs(a), &abs(w), ab.as_deref(), &mut scale, m, k, n, ClampF32::NONE);
        (out, scale)
    }

    #[test]
    fn gemm_matches_reference_on_random_shapes() {
        let mut rng = Rng::new(0x5eed);
        for case in 0..120usize {
            let m = rng.range(1, 20);
            let k = if case.is_multiple_of(10) { rng.range(500, 1200) } else { rng.range(1, 70) };
            let n = rng.range(1, 50);
            let a = rng.vec(m * k);
            let w = rng.vec(n * k);
            let bias = if case.is_multiple_of(3) { None } else { Some(rng.vec(n)) };
            let clamp = if case.is_multiple_of(2) { ClampF32::RELU6 } else { ClampF32::NONE };
            let (want, scale) = reference(&a, &w, bias.as_deref(), m, k, n, clamp);
            let packed = PackedWeightsF32::pack(&w, n, k);
            for &isa in &available_levels() {
                // Strided A and C, with sentinels around the written block.
                let (lda, ldc) = (k + 3, n + 5);
                let mut a_s = vec![f32::NAN; (m - 1) * lda + k];
                for i in 0..m {
                    a_s[i * lda..i * lda + k].copy_from_slice(&a[i * k..(i + 1) * k]);
                }
                let mut c = vec![-7.0; m * ldc];
                gemm_f32(isa, m, k, &a_s, lda, &packed, bias.as_deref(), clamp, &mut c, ldc);
                let mut got = vec![0.0; m * n];
                for i in 0..m {
                    got[i * n..(i + 1) * n].copy_from_slice(&c[i * ldc..i * ldc + n]);
                    assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|&v| v == -7.0), "{isa:?} wrote past n");
                }
                assert_close(&got, &want, &scale, 1e-5, &format!("gemm {isa:?} m={m} k={k} n={n}"));
            }
        }
    }

    #[test]
    fn gathered_rows_match_the_gathered_matrix() {
        let mut rng = Rng::new(0x6a7);
        for case in 0..60usize {
            let m = rng.range(1, 20);
            let segs = rng.range(1, 8);
            // Short segments; long ones several to a depth slice; and
            // segments longer than a slice (cut into parts).
            let seg = match case % 7 {
                0 => rng.range(60, 100),
                1 => rng.range(150, 400),
                2 => rng.range(520, 1100),
                _ => rng.range(1, 12),
            };
            let k = segs * seg;
            let n = rng.range(1, 40);
            // Rows and segments anywhere in a shared buffer, overlapping
            // allowed: evenly spaced rows (a run along an image row), or
            // any order (pixels across image rows).
            let (spread, reach) = (rng.range(1, 60), rng.range(0, 50));
            let len = spread + reach + seg;
            let a = rng.vec(len);
            let lda = rng.range(0, spread / m.max(1) + 1);
            let starts: Vec<usize> =
                (0..m).map(|i| if case % 2 == 0 { i * lda } else { rng.range(0, spread) }).collect();
            let bases: Vec<usize> = (0..segs).map(|_| rng.range(0, reach + 1)).collect();
            let mut dense = vec![0.0; m * k];
            for (i, &st) in starts.iter().enumerate() {
                for (s, &b) in bases.iter().enumerate() {
                    dense[i * k + s * seg..i * k + (s + 1) * seg].copy_from_slice(&a[st + b..st + b + seg]);
                }
            }
            let w = rng.vec(n * k);
            let bias = if case.is_multiple_of(3) { None } else { Some(rng.vec(n)) };
            let clamp = if case.is_multiple_of(2) { ClampF32::RELU6 } else { ClampF32::NONE };
            let (want, scale) = reference(&dense, &w, bias.as_deref(), m, k, n, clamp);
            let packed = PackedWeightsF32::pack(&w, n, k);
            for &isa in &available_levels() {
                let ldc = n + 3;
                let mut c = vec![-7.0; m * ldc];
                gemm_f32_gather(isa, m, &a, &starts, &bases, seg, &packed, bias.as_deref(), clamp, &mut c, ldc);
                let mut got = vec![0.0; m * n];
                for i in 0..m {
                    got[i * n..(i + 1) * n].copy_from_slice(&c[i * ldc..i * ldc + n]);
                    assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|&v| v == -7.0), "{isa:?} wrote past n");
                }
                let ctx = format!("gather {isa:?} m={m} segs={segs} seg={seg} n={n} starts={starts:?}");
                assert_close(&got, &want, &scale, 1e-5, &ctx);
            }
        }
    }

    #[test]
    fn row_tiles_cover_the_rows_with_few_short_tiles() {
        for mr in [4, 6] {
            for m in 1..200 {
                let tiles: Vec<usize> = row_tiles(m, mr).collect();
                assert_eq!(tiles.iter().sum::<usize>(), m, "m={m} mr={mr}");
                assert_eq!(tiles.len(), m.div_ceil(mr), "m={m} mr={mr}: {tiles:?}");
                assert!(tiles.iter().all(|&t| (1..=mr).contains(&t)), "m={m} mr={mr}: {tiles:?}");
                // At most one tile under mr - 1 rows, and only where
                // spreading cannot give every tile mr - 1 or more.
                let short = tiles.iter().filter(|&&t| t + 1 < mr).count();
                assert!(short <= 1, "m={m} mr={mr}: {tiles:?}");
                if short == 1 {
                    assert!(tiles.len() * (mr - 1) > m || *tiles.last().unwrap() + 2 >= mr, "m={m} mr={mr}: {tiles:?}");
                }
            }
        }
        assert_eq!(row_tiles(25, 6).collect::<Vec<_>>(), [5; 5]);
        assert_eq!(row_tiles(49, 6).collect::<Vec<_>>(), [6, 6, 6, 6, 5, 5, 5, 5, 5]);
        assert_eq!(row_tiles(7, 6).collect::<Vec<_>>(), [6, 1]);
        assert_eq!(row_tiles(10, 6).collect::<Vec<_>>(), [6, 4]);
    }

    /// A row sums the same whichever tile it lands in: the GEMM of rows
    /// `0..m` equals, bit for bit, the GEMMs of any split of them (the
    /// threads' split). Only a whole GEMM of one row may differ.
    #[test]
    fn a_rows_result_does_not_depend_on_the_split() {
        let mut rng = Rng::new(0x5917);
        for case in 0..40usize {
            let (m, k, n) = (rng.range(2, 40), rng.range(1, 300), rng.range(1, 40));
            let (a, w) = (rng.vec(m * k), rng.vec(n * k));
            let bias = rng.vec(n);
            let packed = PackedWeightsF32::pack(&w, n, k);
            for &isa in &available_levels() {
                let mut whole = vec![0.0; m * n];
                gemm_f32(isa, m, k, &a, k, &packed, Some(&bias), ClampF32::NONE, &mut whole, n);
                let cut = 1 + case % (m - 1);
                let mut parts = vec![0.0; m * n];
                for (r0, r1) in [(0, cut), (cut, m)] {
                    let rows = r1 - r0;
                    if rows == 1 {
                        continue; // a whole one-row GEMM may use the GEMV kernel
                    }
                    gemm_f32(
                        isa,
                        rows,
                        k,
                        &a[r0 * k..],
                        k,
                        &packed,
                        Some(&bias),
                        ClampF32::NONE,
                        &mut parts[r0 * n..],
                        n,
                    );
                    let (got, want) = (&parts[r0 * n..r1 * n], &whole[r0 * n..r1 * n]);
                    assert!(
                        got.iter().zip(want).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{isa:?} m={m} k={k} n={n} cut {cut}"
                    );
                }
            }
        }
    }

    /// Few rows against wide, deep weights go through the panels in L2-sized
    /// groups: the same bits as tiles of at most one row tile each (which
    /// are never grouped), and close to the reference.
    #[test]
    fn grouped_panels_give_the_same_bits() {
        let mut rng = Rng::new(0x6209);
        for case in 0..6usize {
            // 64 KiB panels: groups of 4 panels, 5-7 panels here.
            // No 1-row last call: a whole GEMM of one row sums another way.
            let m = match rng.range(7, 40) {
                m if m % 6 == 1 => m + 1,
                m => m,
            };
            let (k, n) = (1024, rng.range(65, 112));
            let (a, w, bias) = (rng.vec(m * k), rng.vec(n * k), rng.vec(n));
            let packed = PackedWeightsF32::pack(&w, n, k);
            assert!(packed.panels() > GROUP_WEIGHT_BYTES / (k * NR * 4) && m * k * 4 <= GROUP_ROW_BYTES);
            let clamp = if case % 2 == 0 { ClampF32::RELU6 } else { ClampF32::NONE };
            let (want, scale) = reference(&a, &w, Some(&bias), m, k, n, clamp);
            for &isa in &available_levels() {
                let mut whole = vec![0.0; m * n];
                gemm_f32(isa, m, k, &a, k, &packed, Some(&bias), clamp, &mut whole, n);
                assert_close(&whole, &want, &scale, 1e-5, &format!("grouped {isa:?} m={m} n={n}"));
                let mut tiles = vec![0.0; m * n];
                for r0 in (0..m).step_by(6) {
                    let rows = 6.min(m - r0);
                    let out = &mut tiles[r0 * n..];
                    gemm_f32(isa, rows, k, &a[r0 * k..], k, &packed, Some(&bias), clamp, out, n);
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&whole), bits(&tiles), "{isa:?} m={m} n={n}");
            }
        }
    }

    #[test]
    fn gemm_zero_depth_is_bias() {
        let packed = PackedWeightsF32::pack(&[], 3, 0);
        for &isa in &available_levels() {
            let mut c = [9.0; 6];
            gemm_f32(isa, 2, 0, &[], 0, &packed, Some(&[1.0, -2.0, 7.0]), ClampF32::RELU6, &mut c, 3);
            assert_eq!(c, [1.0, 0.0, 6.0, 1.0, 0.0, 6.0]);
        }
    }

    /// The SIMD kernels (AVX2 and NEON alike) sum each output as the bias
    /// plus one fused multiply-add per depth step, in depth order, for
    /// tiles of any row count; the GEMV twin sums four interleaved partial
    /// sums. So their results are the same bits on every SIMD level and
    /// architecture, checked here against `f32::mul_add` (fused everywhere)
    /// and `ClampF32::apply` (signed zeros included).
    #[test]
    fn simd_kernels_sum_in_the_documented_order() {
        let mut rng = Rng::new(0xf3a);
        for case in 0..40usize {
            let m = if case.is_multiple_of(4) { 1 } else { rng.range(2, 15) };
            let (k, n) = (rng.range(1, 90), rng.range(1, 40));
            let (mut a, mut w, mut bias) = (rng.vec(m * k), rng.vec(n * k), rng.vec(n));
            // Signed zeros: a +0.0 row against negative weights and a -0.0
            // bias sums to -0.0, which a ReLU must keep as it is.
            let clamp = if case % 2 == 1 { ClampF32::RELU } else { ClampF32::NONE };
            if case % 3 == 1 {
                a[..k].fill(0.0);
                w.iter_mut().for_each(|v| *v = -v.abs());
                bias.iter_mut().step_by(2).for_each(|b| *b = -0.0);
            }
            let packed = PackedWeightsF32::pack(&w, n, k);
            let want: Vec<f32> = (0..m * n)
                .map(|i| {
                    let (row, o) = (&a[i / n * k..][..k], &w[i % n * k..][..k]);
                    if m > 1 {
                        row.iter().zip(o).fold(bias[i % n], |s, (&x, &y)| x.mul_add(y, s))
                    } else {
                        // Partial sum `p % 4` over the whole groups of four,
                        // the rest into partial sum 0.
                        let mut s = [0.0f32; 4];
                        for (p, (&x, &y)) in row.iter().zip(o).enumerate() {
                            let j = if p < k / 4 * 4 { p % 4 } else { 0 };
                            s[j] = x.mul_add(y, s[j]);
                        }
                        (s[0] + s[1]) + (s[2] + s[3]) + bias[i % n]
                    }
                })
                .map(|v| clamp.apply(v))
                .collect();
            for &isa in available_levels().iter().filter(|&&l| l != IsaLevel::Scalar) {
                let mut c = vec![0.0; m * n];
                gemm_f32(isa, m, k, &a, k, &packed, Some(&bias), clamp, &mut c, n);
                let same = c.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{isa:?} m={m} k={k} n={n}: {c:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn gemm_propagates_nan_like_reference() {
        let w = [1.0, 1.0];
        let packed = PackedWeightsF32::pack(&w, 1, 2);
        for &isa in &available_levels() {
            let mut c = [0.0];
            gemm_f32(isa, 1, 2, &[f32::NAN, 1.0], 2, &packed, None, ClampF32::RELU6, &mut c, 1);
            assert!(c[0].is_nan(), "{isa:?}");
        }
    }

    /// `cargo test --release -p ferrolite-kernels --lib optimized::gemm::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_gemm() {
        use crate::optimized::testutil::gflops;
        let mut rng = Rng::new(1);
        for &(m, k, n) in &[
            (1568usize, 16usize, 96usize),
            (12544, 16, 96),
            (3136, 24, 144),
            (12544, 27, 32),
            (49, 1024, 1024),
            (784, 256, 256),
            (1, 1280, 1001),
        ] {
            let a = rng.vec(m * k);
            let w = rng.vec(n * k);
            let bias = rng.vec(n);
            let packed = PackedWeightsF32::pack(&w, n, k);
            let mut c = vec![0.0; m * n];
            let flops = 2.0 * (m * n * k) as f64;
            for &isa in &available_levels() {
                let g = gflops(flops, || gemm_f32(isa, m, k, &a, k, &packed, Some(&bias), ClampF32::RELU6, &mut c, n));
                println!("gemm m={m} k={k} n={n} {:>9}: {g:6.1} GFLOP/s", isa.name());
            }
            if m * n * k <= 1 << 28 {
                let g = gflops(flops, || fully_connected_f32(&a, &w, Some(&bias), &mut c, m, k, n, ClampF32::RELU6));
                println!("gemm m={m} k={k} n={n} reference: {g:6.1} GFLOP/s");
            }
        }
    }
}
