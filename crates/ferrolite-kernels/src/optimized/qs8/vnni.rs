//! The int8 conv on AVX-512 VNNI: `qs8_gemm_{1..6}x32c4_vnni` with the
//! requantisation fused, bit-exact with the reference like every `qs8` path.
//!
//! `vpdpbusd` multiplies four unsigned bytes by four signed bytes and adds
//! the four products to an int32 lane: 64 multiply-adds per instruction,
//! four times the AVX2 `vpmaddwd` path's. The weights are the raw int8
//! values, packed per 16-channel panel as one 64-byte register per quad of
//! depth (channel `c`'s taps `4t .. 4t + 4` in bytes `4c .. 4c + 4` of
//! quad `t`). The activations must be unsigned, so the im2col stores
//! `u = x + 128`, and since the reference sums `(x + input_offset) * w`:
//!
//! `sum (x + off) w = sum u w + (off - 128) sum w`
//!
//! The second term is a per-channel constant, added to the bias before the
//! accumulators start from it (wrapping, like the reference's sums: equal
//! modulo 2^32, so equal). A padding tap, which the reference skips, holds
//! `u = 128 - off`, whose product cancels its share of the correction;
//! the depth is padded to a whole quad with zero weights.
//!
//! Each sum then goes through the exact requantisation on 16 lanes: in
//! most trained layers the product form ([`product16`]: nine operations
//! per 16 sums), else the AVX2 steps (`avx512::requant16_i32`); both give
//! the AVX2 path's outputs. A layer with few input channels spends more
//! on this than on its sums, so the narrowing to bytes packs four
//! registers at a time ([`store_bytes`]) rather than one.
//! The dynamic-range conv (`hybrid`) runs the same sums on its quantised
//! image, with its float epilogue (`gemm_f32`).

use super::avx2::Epilogue;
use super::avx512::{byte_bounds, lanes128, narrow4, product16, product_consts, requant16_i32};
use super::{FloatTail, RequantMode, TailScale, PRODUCT_FIELDS, Q8, RQ_FIELDS};
use crate::optimized::isa::Avx512Vnni;
use std::arch::x86_64::*;

/// Channels per panel: one 512-bit register of int32 sums.
const NR: usize = 16;

/// `$tile::<G.., M, P>(args)` for a tile of `$rows` rows (1..=6, more
/// taken as 6): the const-generic instances a column kernel runs.
macro_rules! by_rows {
    ($rows:expr, $tile:ident :: <$($g:ty,)* @, $p:ident> ($($arg:expr),*)) => {
        match $rows {
            1 => $tile::<$($g,)* 1, $p>($($arg),*),
            2 => $tile::<$($g,)* 2, $p>($($arg),*),
            3 => $tile::<$($g,)* 3, $p>($($arg),*),
            4 => $tile::<$($g,)* 4, $p>($($arg),*),
            5 => $tile::<$($g,)* 5, $p>($($arg),*),
            _ => $tile::<$($g,)* 6, $p>($($arg),*),
        }
    };
}

/// `$column::<G.., P>(args)` for one panel or a pair (`$pair`).
macro_rules! by_pair {
    ($pair:expr, $column:ident $(:: <$($g:ty),*>)? ($($arg:expr),*)) => {
        match $pair {
            false => $column::<$($($g,)*)? 1>($($arg),*),
            true => $column::<$($($g,)*)? 2>($($arg),*),
        }
    };
}

/// The row counts of the tiles of an `m`-row column: 6-row tiles, with a
/// short remainder spread so no tile has fewer than 5 rows where that can
/// be done (`gemm::row_tiles`): a 1- or 2-row tile's few `vpdpbusd` chains
/// wait on the instruction's latency, so 49 rows run as 6,6,6,6,5,5,5,5,5
/// rather than eight 6-row tiles and a 1-row one.
fn row_tiles(m: usize) -> impl Iterator<Item = usize> {
    crate::optimized::gemm::row_tiles(m, 6)
}

/// An int8 conv's weights packed for `vpdpbusd`, with the offset
/// correction per channel.
#[derive(Clone, Debug)]
pub(crate) struct VnniConv {
    token: Avx512Vnni,
    /// Depth rounded up to 4: the im2col row length in bytes.
    pub(crate) k4: usize,
    /// Per group, panels of `k4 / 4` quads of 64 bytes.
    packed: Vec<Vec<i8>>,
    /// Per group, `sum_k w[c][k]` (wrapping) per channel of its panels
    /// (zero past the group's channels).
    wsum: Vec<Vec<i32>>,
}

/// The byte a padding tap holds for this input offset: `128 -
/// input_offset` (`None` outside `u8`: a zero point outside int8).
pub(crate) fn pad_byte(input_offset: i32) -> Option<u8> {
    u8::try_from(128i32.checked_sub(input_offset)?).ok()
}

impl VnniConv {
    /// `None` for uint8 weights.
    pub(crate) fn new<W: Q8>(
        token: Avx512Vnni,
        filter: &[W],
        groups: usize,
        per_group: usize,
        depth: usize,
    ) -> Option<VnniConv> {
        if depth == 0 || !W::SIGNED {
            return None;
        }
        let k4 = depth.div_ceil(4) * 4;
        let panels = per_group.div_ceil(NR);
        let mut packed = Vec::with_capacity(groups);
        let mut wsum = Vec::with_capacity(groups);
        for g in 0..groups {
            let mut buf = vec![0i8; panels * k4 * NR];
            let mut sums = vec![0i32; panels * NR];
            for (oc, w) in filter[g * per_group * depth..].chunks_exact(depth).take(per_group).enumerate() {
                let (j, c) = (oc / NR, oc % NR);
                let panel = &mut buf[j * k4 * NR..(j + 1) * k4 * NR];
                for (k, &v) in w.iter().enumerate() {
                    panel[(k / 4) * 64 + 4 * c + k % 4] = v.to_i32() as i8;
                }
                sums[oc] = w.iter().fold(0i32, |s, &v| s.wrapping_add(v.to_i32()));
            }
            packed.push(buf);
            wsum.push(sums);
        }
        Some(VnniConv { token, k4, packed, wsum })
    }

    /// Add group `g`'s offset correction `(input_offset - 128) * sum w` to
    /// what its sums start from (`starts`: one value per channel of its
    /// panels, the bias or zero), making them [`Self::gemm_requant`]'s and
    /// [`Self::gemm_f32`]'s start values.
    pub(crate) fn add_correction(&self, g: usize, input_offset: i32, starts: &mut [i32]) {
        let k = input_offset.wrapping_sub(128);
        for (v, &s) in starts.iter_mut().zip(&self.wsum[g]) {
            *v = v.wrapping_add(k.wrapping_mul(s));
        }
    }

    /// The `m` rows of `a` (`k4` bytes each, `u = x + 128`) against group
    /// `g`'s panels, requantised into `out` (rows at stride `ldo`, the
    /// group's `cols` channels). `epi.bias` holds the start values (see
    /// [`Self::add_correction`]). With `product` (the group's
    /// `Requant::product_rows`, for a run in `RequantMode::Short`) the
    /// product form requantises, and the start values must be `2^31`
    /// higher (wrapping) than the other form's.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm_requant<T: Q8>(
        &self,
        g: usize,
        m: usize,
        a: &[u8],
        epi: &Epilogue<'_>,
        product: Option<&[i32]>,
        out: &mut [T],
        ldo: usize,
        cols: usize,
    ) {
        let panels = cols.div_ceil(NR);
        self.check(g, m, a, cols, out.len(), ldo);
        assert!(epi.bias.len() >= panels * NR);
        // The product rows' length: the panels' channels.
        let stride = panels * NR;
        match product {
            Some(p) => assert!(epi.mode == RequantMode::Short && p.len() >= PRODUCT_FIELDS * stride),
            None => assert!(epi.rq.len() >= panels * RQ_FIELDS * NR),
        }
        let o = out.as_mut_ptr() as *mut u8;
        self.walk(g, m, a, cols, |args| {
            let j = args.panel;
            let start = epi.bias[j * NR..].as_ptr();
            // SAFETY (pointer only): column `16 j` lies in `out`'s rows.
            let dst = unsafe { o.add(j * NR) };
            let sink = ByteRows { out: dst, ldo, nc: args.nc, oc: epi.oc };
            // SAFETY: the token proves AVX-512 VNNI; `check` and the
            // asserts above bound every access: the column's `m` rows of
            // `k4` bytes, its panels, their constants and start values, and
            // `nc` bytes of each output row (`T` is a byte).
            unsafe {
                match product {
                    Some(p) => {
                        let pc = p[j * NR..].as_ptr();
                        by_pair!(args.pair, column_product::<T>(&args, m, pc, stride, start, &sink))
                    }
                    None => {
                        let rq = epi.rq[j * RQ_FIELDS * NR..].as_ptr();
                        by_pair!(args.pair, column_rq::<T>(&args, m, rq, start, epi.mode, &sink))
                    }
                }
            }
        });
    }

    /// [`Self::gemm_requant`] with the dynamic-range conv's float epilogue:
    /// the sums start from `start` ([`Self::add_correction`], no bias) and
    /// `tail` (its scales and bias panel-padded like `start`) finishes them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm_f32(
        &self,
        g: usize,
        m: usize,
        a: &[u8],
        start: &[i32],
        tail: &FloatTail<'_>,
        out: &mut [f32],
        ldo: usize,
        cols: usize,
    ) {
        let panels = cols.div_ceil(NR);
        self.check(g, m, a, cols, out.len(), ldo);
        assert!(start.len() >= panels * NR && tail.bias.is_none_or(|b| b.len() >= panels * NR));
        if let TailScale::PerChannel(w) = tail.scale {
            assert!(w.len() >= panels * NR, "per-channel scales for the panels");
        }
        let o = out.as_mut_ptr();
        self.walk(g, m, a, cols, |args| {
            let j = args.panel;
            // SAFETY (pointer only): column `16 j` lies in `out`'s rows.
            let dst = unsafe { o.add(j * NR) };
            let start = start[j * NR..].as_ptr();
            // SAFETY: as in `gemm_requant`, with 16 scales and biases per
            // panel from panel `j` and `nc` floats per output row.
            unsafe { by_pair!(args.pair, column_f32(&args, m, start, tail, dst, ldo)) }
        });
    }

    /// The raw sums of the `m` rows of `a` against group `g`'s channels
    /// `16 p0 .. 16 p0 + cols`: `out[r * ldo + c] = start[c] + sum_k a[r][k]
    /// w[16 p0 + c][k]` (wrapping), for FULLY_CONNECTED, which requantises
    /// them in `f64` afterwards. `start` holds the [`Self::add_correction`]
    /// values of those channels (16 per panel).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm_i32(
        &self,
        g: usize,
        p0: usize,
        m: usize,
        a: &[u8],
        start: &[i32],
        out: &mut [i32],
        ldo: usize,
        cols: usize,
    ) {
        let (panels, k4) = (cols.div_ceil(NR), self.k4);
        assert!(k4.is_multiple_of(4) && self.packed[g].len() >= (p0 + panels) * k4 * NR && a.len() >= m * k4);
        assert!(m == 0 || (ldo >= cols && out.len() >= (m - 1) * ldo + cols));
        assert!(start.len() >= panels * NR);
        let o = out.as_mut_ptr();
        self.walk_from(g, p0, m, a, cols, |args| {
            let j = args.panel;
            // SAFETY (pointer only): column `16 j` lies in `out`'s rows.
            let dst = unsafe { o.add(j * NR) };
            let start = start[j * NR..].as_ptr();
            // SAFETY: the token proves AVX-512 VNNI; the asserts above
            // bound the column's rows of `k4` bytes, its panels (from `p0`),
            // 16 start values per panel and `nc` sums of each output row.
            unsafe { by_pair!(args.pair, column_i32(&args, m, start, dst, ldo)) }
        });
    }

    /// The bounds every tile relies on: `m` rows of `k4` bytes, group `g`'s
    /// panels for `cols` channels, `m` output rows of `cols` at `ldo`.
    fn check(&self, g: usize, m: usize, a: &[u8], cols: usize, out_len: usize, ldo: usize) {
        let (w, k4) = (&self.packed[g], self.k4);
        assert!(k4.is_multiple_of(4) && w.len() >= cols.div_ceil(NR) * k4 * NR && a.len() >= m * k4);
        assert!(m == 0 || (ldo >= cols && out_len >= (m - 1) * ldo + cols));
    }

    /// Call `column(args)` for each column of group `g`'s `cols`
    /// channels: panel pairs, an odd last panel alone. The kernel runs the
    /// column's `m` rows in tiles of up to 6 (a pair's weights stay in L1
    /// while every row of the block, in L2, passes over them), with the
    /// column's constants in registers throughout.
    fn walk(&self, g: usize, m: usize, a: &[u8], cols: usize, column: impl FnMut(TileArgs)) {
        self.walk_from(g, 0, m, a, cols, column)
    }

    /// [`Self::walk`] over the panels from `p0` on (`cols` counted from
    /// channel `16 p0`; `args.panel` counts from `p0` too).
    fn walk_from(&self, g: usize, p0: usize, m: usize, a: &[u8], cols: usize, mut column: impl FnMut(TileArgs)) {
        let _ = self.token;
        let (w, k4) = (&self.packed[g][p0 * self.k4 * NR..], self.k4);
        let panels = cols.div_ceil(NR);
        let mut j = 0;
        while j < panels && m > 0 {
            let pair = panels - j >= 2;
            let nc = (cols - j * NR).min(if pair { 2 * NR } else { NR });
            column(TileArgs { k4, a: a.as_ptr(), w: w[j * k4 * NR..].as_ptr(), stride: k4 * NR, panel: j, pair, nc });
            j += if pair { 2 } else { 1 };
        }
    }
}

/// One column's inputs: depth `k4`, its first row of `a` (rows `k4`
/// apart), its first panel (`stride` bytes to the next), the panel's
/// index, whether it covers two panels, and its columns.
#[derive(Clone, Copy)]
struct TileArgs {
    k4: usize,
    a: *const u8,
    w: *const i8,
    stride: usize,
    panel: usize,
    pair: bool,
    nc: usize,
}

impl TileArgs {
    /// The same column from row `r` on.
    ///
    /// # Safety
    /// Row `r` lies in the rows `a` points to.
    unsafe fn at_row(&self, r: usize) -> TileArgs {
        // SAFETY: per the contract.
        TileArgs { a: unsafe { self.a.add(r * self.k4) }, ..*self }
    }
}

/// `qs8_gemm_{M}x{16 P}c4_vnni`'s sums: `M * P` int32 accumulators
/// starting from `start` (16 per panel); per quad of depth, `P` weight
/// loads, one broadcast of each row's four bytes, `M * P` `vpdpbusd`.
///
/// # Safety
/// AVX-512 VNNI; `M` rows of `k4` bytes, `P` panels of `k4 * 16` bytes,
/// `16 P` start values.
#[inline]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn accumulate<const M: usize, const P: usize>(t: &TileArgs, start: *const i32) -> [[__m512i; M]; P] {
    // SAFETY: per the contract.
    unsafe {
        let mut acc: [[__m512i; M]; P] =
            std::array::from_fn(|j| [_mm512_loadu_si512(start.add(j * NR) as *const _); M]);
        let rows: [*const u8; M] = std::array::from_fn(|r| t.a.add(r * t.k4));
        for q in 0..t.k4 / 4 {
            let wv: [__m512i; P] =
                std::array::from_fn(|j| _mm512_loadu_si512(t.w.add(j * t.stride + q * 64) as *const _));
            for r in 0..M {
                let x = _mm512_set1_epi32((rows[r].add(4 * q) as *const i32).read_unaligned());
                for j in 0..P {
                    acc[j][r] = _mm512_dpbusd_epi32(acc[j][r], x, wv[j]);
                }
            }
        }
        acc
    }
}

/// [`accumulate`] for a single row (`M == 1`: a batch-1
/// FULLY_CONNECTED): the even and odd quads of depth into separate sums,
/// added at the end, so `2 P` chains of `vpdpbusd` hide its latency
/// instead of `P`.
///
/// # Safety
/// As [`accumulate`], with `M == 1`.
#[inline]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn accumulate_one_row<const M: usize, const P: usize>(t: &TileArgs, start: *const i32) -> [[__m512i; M]; P] {
    // SAFETY: per the contract.
    unsafe {
        let mut even = [_mm512_setzero_si512(); P];
        let mut odd = [_mm512_setzero_si512(); P];
        for (j, e) in even.iter_mut().enumerate() {
            *e = _mm512_loadu_si512(start.add(j * NR) as *const _);
        }
        let quads = t.k4 / 4;
        let x = |q: usize| _mm512_set1_epi32((t.a.add(4 * q) as *const i32).read_unaligned());
        let w = |j: usize, q: usize| _mm512_loadu_si512(t.w.add(j * t.stride + q * 64) as *const _);
        let mut q = 0;
        while q + 2 <= quads {
            let (x0, x1) = (x(q), x(q + 1));
            for j in 0..P {
                even[j] = _mm512_dpbusd_epi32(even[j], x0, w(j, q));
                odd[j] = _mm512_dpbusd_epi32(odd[j], x1, w(j, q + 1));
            }
            q += 2;
        }
        if q < quads {
            let x0 = x(q);
            for j in 0..P {
                even[j] = _mm512_dpbusd_epi32(even[j], x0, w(j, q));
            }
        }
        let mut acc = [[_mm512_setzero_si512(); M]; P];
        for j in 0..P {
            acc[j][0] = _mm512_add_epi32(even[j], odd[j]);
        }
        acc
    }
}

/// The mask of the first `n` lanes (all 32 from `n = 32` on).
#[inline(always)]
fn lanes(n: usize) -> u32 {
    if n >= 32 {
        u32::MAX
    } else {
        (1u32 << n) - 1
    }
}

/// Runs `$body` with `$r` bound to each row `0 .. $m` (`$m <= 6`) as
/// straight-line code. A loop over a tile's registers that LLVM leaves
/// rolled keeps them in a stack array, a load and a store around every
/// step: the product-form epilogue of the 6x32 tile ran 1.5x slower so.
macro_rules! each_row {
    ($m:expr, |$r:ident| $body:block) => {
        each_row!(@ $m, $r, $body, 0 1 2 3 4 5)
    };
    (@ $m:expr, $r:ident, $body:block, $($i:literal)*) => {
        $( if $i < $m { let $r: usize = $i; $body } )*
    };
}

/// `qs8_gemm_{M}x{16 P}c4_vnni` requantised by the AVX2 steps: the sums
/// of [`accumulate`], `requant16_i32` per panel and row, then
/// [`store_bytes`].
///
/// # Safety
/// As [`accumulate`]; `out` as [`store_bytes`] needs.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
unsafe fn tile_rq<T: Q8, const M: usize, const P: usize>(
    t: &TileArgs,
    consts: &[[__m512i; RQ_FIELDS]; P],
    start: *const i32,
    mode: RequantMode,
    out: &ByteRows,
) {
    // SAFETY: per the contract.
    unsafe {
        let mut v = accumulate::<M, P>(t, start);
        each_row!(M, |r| {
            for j in 0..P {
                v[j][r] = requant16_i32(v[j][r], &consts[j], mode, out.oc);
            }
        });
        store_bytes::<T, M, P>(&v, out);
    }
}

/// [`tile_rq`] over the `m` rows of a column.
///
/// # Safety
/// As [`accumulate`] for `m` rows; `RQ_FIELDS * 16 * P` constants at
/// `rq`; `out` as [`store_bytes`] needs for `m` rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
unsafe fn column_rq<T: Q8, const P: usize>(
    t: &TileArgs,
    m: usize,
    rq: *const i32,
    start: *const i32,
    mode: RequantMode,
    out: &ByteRows,
) {
    // SAFETY: per the contract; each tile starts at a row below `m`.
    unsafe {
        let mut consts = [[_mm512_setzero_si512(); RQ_FIELDS]; P];
        for (j, c) in consts.iter_mut().enumerate() {
            let q = rq.add(j * RQ_FIELDS * NR);
            for (f, v) in c.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(q.add(f * NR) as *const _);
            }
        }
        let mut r = 0;
        for rows in row_tiles(m) {
            let (t, out) = (t.at_row(r), out.at_row(r));
            by_rows!(rows, tile_rq::<T, @, P>(&t, &consts, start, mode, &out));
            r += rows;
        }
    }
}

/// `qs8_gemm_{M}x{16 P}c4_vnni` requantised in the product form: the sums
/// of [`accumulate`] (started `2^31` up), [`product16`] per panel and row,
/// then [`store_bytes`].
///
/// # Safety
/// As [`accumulate`]; `out` as [`store_bytes`] needs.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
unsafe fn tile_product<T: Q8, const M: usize, const P: usize>(
    t: &TileArgs,
    consts: &[[__m512i; PRODUCT_FIELDS]; P],
    start: *const i32,
    out: &ByteRows,
) {
    // SAFETY: per the contract.
    unsafe {
        let mut v = accumulate::<M, P>(t, start);
        each_row!(M, |r| {
            for j in 0..P {
                v[j][r] = product16(v[j][r], &consts[j]);
            }
        });
        store_bytes::<T, M, P>(&v, out);
    }
}

/// [`tile_product`] over the `m` rows of a column.
///
/// # Safety
/// As [`accumulate`] for `m` rows; at `pc`, the column's first panel in
/// `PRODUCT_FIELDS` rows `stride` apart, `16 P` readable values each;
/// `out` as [`store_bytes`] needs for `m` rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
unsafe fn column_product<T: Q8, const P: usize>(
    t: &TileArgs,
    m: usize,
    pc: *const i32,
    stride: usize,
    start: *const i32,
    out: &ByteRows,
) {
    // SAFETY: per the contract; each tile starts at a row below `m`.
    unsafe {
        let mut consts = [[_mm512_setzero_si512(); PRODUCT_FIELDS]; P];
        for (j, c) in consts.iter_mut().enumerate() {
            *c = product_consts(pc.add(j * NR), stride);
        }
        let mut r = 0;
        for rows in row_tiles(m) {
            let (t, out) = (t.at_row(r), out.at_row(r));
            by_rows!(rows, tile_product::<T, @, P>(&t, &consts, start, &out));
            r += rows;
        }
    }
}

/// [`product16`] on 16 lanes `u` whose constants start at `rows[0]`
/// (`Requant::product_rows` of row length `stride`), for tests.
#[cfg(test)]
pub(super) fn product_lanes(_t: crate::optimized::isa::Avx512, u: [i32; NR], rows: &[i32], stride: usize) -> [i32; NR] {
    assert!(rows.len() >= (PRODUCT_FIELDS - 1) * stride + NR);
    let mut got = [0i32; NR];
    // SAFETY: the token proves AVX-512 F; every load and store is 16 lanes
    // of `u`, `got` or a row of `rows` (the assert above).
    unsafe {
        let v = product16(_mm512_loadu_si512(u.as_ptr() as *const _), &product_consts(rows.as_ptr(), stride));
        _mm512_storeu_si512(got.as_mut_ptr() as *mut _, v);
    }
    got
}

/// Where a tile's bytes go: its first row and column (`out`), the row
/// stride, the tile's columns and the output offset and clamp bounds.
struct ByteRows {
    out: *mut u8,
    ldo: usize,
    nc: usize,
    oc: [i32; 3],
}

impl ByteRows {
    /// The same columns from row `r` on.
    ///
    /// # Safety
    /// Row `r` lies in the output `out` points into.
    unsafe fn at_row(&self, r: usize) -> ByteRows {
        // SAFETY: per the contract.
        ByteRows { out: unsafe { self.out.add(r * self.ldo) }, ..*self }
    }
}

/// A tile's `M x P` registers of requantised lanes (before the clamp),
/// clamped, narrowed and stored: rows `0 .. M` of `out.nc` bytes. Two
/// panels: two rows per [`narrow4`], 32 bytes each; one panel: four rows,
/// 16 bytes each (a short last group repeats its last row, not stored).
///
/// # Safety
/// AVX-512 F/BW/VL; `out.nc <= 16 P` writable bytes at `out.out + r *
/// out.ldo` for each `r < M`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn store_bytes<T: Q8, const M: usize, const P: usize>(v: &[[__m512i; M]; P], out: &ByteRows) {
    // SAFETY: per the contract.
    unsafe {
        let (lo, hi) = byte_bounds::<T>(out.oc);
        let row = |r: usize| out.out.add(r * out.ldo);
        if P == 2 {
            let mask = lanes(out.nc);
            let mut r = 0;
            while r < M {
                let r1 = (r + 1).min(M - 1);
                let b = narrow4::<T>([v[0][r], v[1][r], v[0][r1], v[1][r1]], lo, hi);
                let halves = [_mm512_castsi512_si256(b), _mm512_extracti64x4_epi64::<1>(b)];
                for (i, h) in halves.into_iter().enumerate().take(M - r) {
                    if out.nc >= 32 {
                        _mm256_storeu_si256(row(r + i) as *mut __m256i, h);
                    } else {
                        _mm256_mask_storeu_epi8(row(r + i) as *mut i8, mask, h);
                    }
                }
                r += 2;
            }
        } else {
            let mask = lanes(out.nc) as __mmask16;
            let mut r = 0;
            while r < M {
                let at = |i: usize| v[0][(r + i).min(M - 1)];
                let b = narrow4::<T>([at(0), at(1), at(2), at(3)], lo, hi);
                let quarters = lanes128(b);
                for (i, q) in quarters.into_iter().enumerate().take(M - r) {
                    if out.nc >= 16 {
                        _mm_storeu_si128(row(r + i) as *mut __m128i, q);
                    } else {
                        _mm_mask_storeu_epi8(row(r + i) as *mut i8, mask, q);
                    }
                }
                r += 4;
            }
        }
    }
}

/// `qs8_gemm_{M}x{16 P}c4_vnni` with no epilogue: the int32 sums stored
/// as they are (the first `t.nc` columns).
///
/// # Safety
/// As [`accumulate`]; `M` output rows of `t.nc` sums at stride `ldo`.
#[inline]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn tile_i32<const M: usize, const P: usize>(t: &TileArgs, start: *const i32, out: *mut i32, ldo: usize) {
    // SAFETY: per the contract.
    unsafe {
        let acc = if M == 1 { accumulate_one_row::<M, P>(t, start) } else { accumulate::<M, P>(t, start) };
        for (j, col) in acc.iter().enumerate() {
            let mask = lanes(t.nc.saturating_sub(j * NR).min(NR)) as __mmask16;
            each_row!(M, |r| {
                _mm512_mask_storeu_epi32(out.add(r * ldo + j * NR) as *mut _, mask, col[r]);
            });
        }
    }
}

/// [`tile_i32`] over the `m` rows of a column.
///
/// # Safety
/// As [`tile_i32`] for `m` rows.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn column_i32<const P: usize>(t: &TileArgs, m: usize, start: *const i32, out: *mut i32, ldo: usize) {
    // SAFETY: per the contract; each tile starts at a row below `m`.
    unsafe {
        let mut r = 0;
        for rows in row_tiles(m) {
            by_rows!(rows, tile_i32::<@, P>(&t.at_row(r), start, out.add(r * ldo), ldo));
            r += rows;
        }
    }
}

/// `qs8_gemm_{M}x{16 P}c4_vnni` with the hybrid float epilogue, in the
/// reference's operation order (as `avx2::qs8_gemm_mx16c2_f32_avx2`):
/// per-tensor `(0 + f32(acc) * s) + bias`, per-channel `(f32(acc) * w[c])
/// * s + bias`, then the clamp.
///
/// # Safety
/// As [`accumulate`]; the tail's scales and bias hold 16 values per panel
/// from panel `t.panel`; `M` output rows of `t.nc` floats at stride `ldo`.
#[inline]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn tile_f32<const M: usize, const P: usize>(
    t: &TileArgs,
    start: *const i32,
    tail: &FloatTail<'_>,
    out: *mut f32,
    ldo: usize,
) {
    // SAFETY: per the contract.
    unsafe {
        let acc = accumulate::<M, P>(t, start);
        let vs = _mm512_set1_ps(tail.s);
        let (lo, hi) = (_mm512_set1_ps(tail.clamp[0]), _mm512_set1_ps(tail.clamp[1]));
        let zero = _mm512_setzero_ps();
        for j in 0..P {
            let col = (t.panel + j) * NR;
            let b = tail.bias.map(|b| _mm512_loadu_ps(b.as_ptr().add(col)));
            let w = match tail.scale {
                TailScale::PerChannel(w) => Some(_mm512_loadu_ps(w.as_ptr().add(col))),
                TailScale::PerTensor => None,
            };
            let mask = lanes(t.nc.saturating_sub(j * NR).min(NR)) as __mmask16;
            each_row!(M, |r| {
                let x = _mm512_cvtepi32_ps(acc[j][r]);
                let v = match w {
                    Some(w) => _mm512_mul_ps(_mm512_mul_ps(x, w), vs),
                    None => _mm512_add_ps(zero, _mm512_mul_ps(x, vs)),
                };
                let v = match b {
                    Some(b) => _mm512_add_ps(v, b),
                    None => v,
                };
                let v = _mm512_min_ps(hi, _mm512_max_ps(lo, v));
                _mm512_mask_storeu_ps(out.add(r * ldo + j * NR), mask, v);
            });
        }
    }
}

/// [`tile_f32`] over the `m` rows of a column.
///
/// # Safety
/// As [`tile_f32`] for `m` rows.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn column_f32<const P: usize>(
    t: &TileArgs,
    m: usize,
    start: *const i32,
    tail: &FloatTail<'_>,
    out: *mut f32,
    ldo: usize,
) {
    // SAFETY: per the contract; each tile starts at a row below `m`.
    unsafe {
        let mut r = 0;
        for rows in row_tiles(m) {
            by_rows!(rows, tile_f32::<@, P>(&t.at_row(r), start, tail, out.add(r * ldo), ldo));
            r += rows;
        }
    }
}
