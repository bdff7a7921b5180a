//! CONV_2D (float) as GEMM: each output pixel is one row of
//! `A · Wᵀ`, with `A` the pixel's receptive field (im2col) and `W` the OHWI
//! filter flattened to `[out_c, kh*kw*in_c]`, packed once at plan time.
//!
//! - 1×1, stride 1, unpadded convs whose output has the input's spatial size
//!   read the input itself as `A` (no copy).
//! - Packed convs with contiguous filter rows (no horizontal dilation, one
//!   group) read the rows of interior pixels straight from the input
//!   ([`gemm_f32_gather`]); the pixels at the image edges, and everything
//!   else, get im2col rows for a block of pixels in a caller-owned scratch
//!   buffer (bounded: ~64 Ki floats), padding taps as zeros, then the GEMM
//!   on the block.
//! - Grouped convs run one GEMM per group over that group's channels.
//! - Weights are packed at plan time ([`gemm_f32`]) unless the caller asks
//!   for them in place: then [`gemm_nt_f32`] reads the filter as the model
//!   stores it, so planning copies nothing (start-up in a millisecond,
//!   invokes slower where the GEMM is large). A single output pixel (a GEMV)
//!   always runs in place: there packing buys nothing.
//!
//! Output "rows" are output pixels (`batches * out_h * out_w` of them, each
//! `out_c` values), and [`Conv2dF32Plan::run_rows`] computes any contiguous
//! range of them, so a caller can split the output with `chunks_mut` and run
//! the chunks on several threads.

use crate::optimized::gemm::{gemm_f32, gemm_f32_gather, PackedWeightsF32};
use crate::optimized::gemm_nt::gemm_nt_f32;
use crate::optimized::isa::IsaLevel;
use crate::reference::conv::Conv2dParams;

/// Target size of one im2col block, in values (256 KiB of f32: half an L2).
pub(crate) const IM2COL_BLOCK: usize = 64 * 1024;

/// Output rows per im2col block for depth `k`: about [`IM2COL_BLOCK`]
/// values, a whole number of 6-row tiles, but never fewer than 96 rows
/// (when there are that many), the rows shared evenly between blocks. Every block streams the whole weight matrix
/// through the cache, so deep convs (megabytes of weights) would otherwise
/// re-read their weights from memory every dozen rows.
pub(crate) fn im2col_block_rows(k: usize, rows: usize) -> usize {
    // The kernels' own tests use small blocks so their small shapes still
    // cross block boundaries (the whole-model tests run the real sizes).
    let min_rows = if cfg!(test) { 12 } else { 96 };
    equal_blocks((IM2COL_BLOCK / k.max(1)).clamp(min_rows, 240) / 6 * 6, rows)
}

/// Output rows per GEMM call of a gathering conv: about 240 at any depth.
/// A call copies the padded input rows it reaches once (padded convs), so
/// longer calls copy fewer rows twice; the rows are not copies competing
/// with the weights for the cache (neighbouring pixels read overlapping
/// input), so deep convs take more rows per call than their im2col blocks
/// would.
pub(crate) fn gather_block_rows(rows: usize) -> usize {
    equal_blocks(if cfg!(test) { 12 } else { 240 }, rows)
}

/// Blocks of about `block` rows (a multiple of 6) over `rows`, the rows
/// shared evenly between blocks.
fn equal_blocks(block: usize, rows: usize) -> usize {
    if rows <= block {
        return rows.max(1);
    }
    // Equal blocks: 289 rows as 78 * 3 + 55, not 96 * 3 + 1 (a 1-row
    // block runs as a GEMV that streams all the weights for one pixel).
    // Rounding to whole tiles can still leave a sliver at the end (9361
    // rows of 240: 39 * 240 + 1); a few rows more per block absorb it.
    let mut b = rows.div_ceil(rows.div_ceil(block)).next_multiple_of(6);
    while b < rows && rows - (rows.div_ceil(b) - 1) * b < 6 {
        b += 6;
    }
    b.min(rows)
}

/// A CONV_2D with its weights packed for [`gemm_f32`].
#[derive(Clone, Debug)]
pub struct Conv2dF32Plan {
    isa: IsaLevel,
    p: Conv2dParams,
    in_shape: [usize; 4],
    filter_shape: [usize; 4],
    out_shape: [usize; 4],
    /// Output channels per group.
    per_group: usize,
    /// GEMM depth: `kh * kw * filter_in_c`.
    depth: usize,
    /// One packed matrix per group; empty when the weights are used in
    /// place (or the plan is unsupported).
    packed: Vec<PackedWeightsF32>,
    /// Read the filter passed to `run_rows` instead of `packed`.
    in_place: bool,
    /// 1×1 stride-1 unpadded: the input is the GEMM's `A`.
    direct: bool,
    /// Runs of interior pixels read their filter rows straight from the
    /// input ([`gemm_f32_gather`]) instead of an im2col copy.
    gather: bool,
    supported: bool,
}

impl Conv2dF32Plan {
    /// Plan a conv; shapes as for [`crate::reference::conv::conv2d_f32`],
    /// `filter` OHWI. `isa` is clamped to what the CPU supports. With
    /// `pack` false the filter is not copied and must be passed again to
    /// every `run_rows`.
    pub fn new(
        isa: IsaLevel,
        params: &Conv2dParams,
        in_shape: [usize; 4],
        filter: &[f32],
        filter_shape: [usize; 4],
        out_shape: [usize; 4],
        pack: bool,
    ) -> Conv2dF32Plan {
        let [batches, in_h, in_w, in_c] = in_shape;
        let [f_out, f_h, f_w, f_in] = filter_shape;
        let [out_b, out_h, out_w, out_c] = out_shape;
        let groups = in_c.checked_div(f_in).unwrap_or(0);
        let supported = f_in > 0
            && groups >= 1
            && in_c == groups * f_in
            && out_c == f_out
            && out_c.is_multiple_of(groups)
            && out_b == batches
            && params.stride_h >= 1
            && params.stride_w >= 1
            && params.dilation_h >= 1
            && params.dilation_w >= 1
            && filter.len() >= f_out * f_h * f_w * f_in;
        let per_group = if supported { out_c / groups } else { 0 };
        let depth = f_h * f_w * f_in;
        let in_place = !pack || out_b * out_h * out_w == 1;
        let packed = if supported && !in_place {
            (0..groups)
                .map(|g| {
                    PackedWeightsF32::pack(
                        &filter[g * per_group * depth..(g + 1) * per_group * depth],
                        per_group,
                        depth,
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let direct = f_h == 1
            && f_w == 1
            && params.stride_h == 1
            && params.stride_w == 1
            && params.pad_top == 0
            && params.pad_left == 0
            && out_h == in_h
            && out_w == in_w;
        // Whenever the filter rows are contiguous in the input. Short filter
        // rows (a first conv over RGB: 3 taps x 3 channels) gain most, since
        // building their im2col rows costs about as much as the GEMM; but
        // even Inception's 3x3 convs over 32 channels (rows of 96) run
        // 8-15% faster without the copy. Deep convs (depth 576-4032) read
        // their rows from the few input rows in L2 instead of an im2col
        // block that competes with the weights for it: 3-5x fewer simulated
        // L2 misses on Inception's 35x35 layers.
        let gather =
            supported && !in_place && !direct && groups == 1 && f_in == in_c && params.dilation_w == 1 && depth >= 1;
        Conv2dF32Plan {
            isa: isa.clamp_to_cpu(),
            p: *params,
            in_shape,
            filter_shape,
            out_shape,
            per_group,
            depth,
            packed,
            in_place,
            direct,
            gather,
            supported,
        }
    }

    /// Whether the plan reads the filter in place (nothing was packed).
    pub fn in_place(&self) -> bool {
        self.in_place
    }

    /// Whether this plan can run; when not (inconsistent shapes), the caller
    /// should use the reference kernel.
    pub fn supported(&self) -> bool {
        self.supported
    }

    /// The level the plan's kernels run at.
    pub fn isa(&self) -> IsaLevel {
        self.isa
    }

    /// Number of output rows (pixels): `batches * out_h * out_w`.
    pub fn rows(&self) -> usize {
        self.out_shape[0] * self.out_shape[1] * self.out_shape[2]
    }

    /// Values per output row: `out_c`.
    pub fn row_len(&self) -> usize {
        self.out_shape[3]
    }

    /// Compute the whole output. `filter` is the OHWI filter the plan was
    /// made with (read only by in-place plans).
    pub fn run(&self, input: &[f32], filter: &[f32], bias: Option<&[f32]>, output: &mut [f32], scratch: &mut Vec<f32>) {
        let len = self.rows() * self.row_len();
        self.run_rows(input, filter, bias, &mut output[..len], 0, scratch);
    }

    /// Whether the plan is an in-place GEMV (one output pixel, one group),
    /// which [`Self::run_gemv_cols`] can split by output channel.
    pub fn is_gemv(&self) -> bool {
        self.supported && self.in_place && self.rows() == 1 && self.per_group == self.out_shape[3]
    }

    /// For an in-place GEMV ([`Self::is_gemv`]), output channels
    /// `col_start .. col_start + out.len()`: contiguous in the output, so
    /// threads can split a GEMV by channels.
    pub fn run_gemv_cols(
        &self,
        input: &[f32],
        filter: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32],
        col_start: usize,
    ) {
        assert!(self.is_gemv(), "run_gemv_cols on a plan that is not an in-place GEMV");
        let out_c = self.out_shape[3];
        let (k, n) = (self.depth, out.len());
        assert!(col_start + n <= out_c && filter.len() >= out_c * k, "gemv columns past the output");
        // The one pixel's receptive field (the input itself for a 1x1 conv).
        let field;
        let a: &[f32] = if self.direct {
            &input[..k]
        } else {
            let mut v = vec![0.0f32; k];
            self.im2col(input, 0, 1, 0, &mut v);
            field = v;
            &field
        };
        let w = &filter[col_start * k..(col_start + n) * k];
        let b = bias.map(|b| &b[col_start..col_start + n]);
        gemm_nt_f32(self.isa, 1, n, k, a, k, w, b, self.p.clamp, out, n);
    }

    /// `c = clamp(a · Wᵍᵀ + bias)` for group `g`: `m` rows of `a` (stride
    /// `lda`) into `c` (stride `out_c`).
    #[allow(clippy::too_many_arguments)]
    fn gemm(&self, g: usize, m: usize, a: &[f32], lda: usize, filter: &[f32], bias: Option<&[f32]>, c: &mut [f32]) {
        let (pg, k, out_c) = (self.per_group, self.depth, self.out_shape[3]);
        let b = bias.map(|b| &b[g * pg..(g + 1) * pg]);
        if self.in_place {
            let w = &filter[g * pg * k..(g + 1) * pg * k];
            gemm_nt_f32(self.isa, m, pg, k, a, lda, w, b, self.p.clamp, c, out_c);
        } else {
            gemm_f32(self.isa, m, k, a, lda, &self.packed[g], b, self.p.clamp, c, out_c);
        }
    }

    /// Compute output pixels `row_start .. row_start + output_rows.len() / out_c`
    /// into `output_rows` (which must be a whole number of rows). `input` is
    /// the whole input tensor; `scratch` is reused between calls (one per
    /// thread).
    pub fn run_rows(
        &self,
        input: &[f32],
        filter: &[f32],
        bias: Option<&[f32]>,
        output_rows: &mut [f32],
        row_start: usize,
        scratch: &mut Vec<f32>,
    ) {
        assert!(self.supported, "unsupported conv plan: use the reference kernel");
        let out_c = self.out_shape[3];
        if out_c == 0 || output_rows.is_empty() {
            return;
        }
        assert!(output_rows.len().is_multiple_of(out_c), "output_rows is not a whole number of rows");
        let rows = output_rows.len() / out_c;
        assert!(row_start + rows <= self.rows(), "rows {row_start}..{} past {}", row_start + rows, self.rows());
        let [batches, in_h, in_w, in_c] = self.in_shape;
        assert!(input.len() >= batches * in_h * in_w * in_c, "input too short");
        if let Some(b) = bias {
            assert!(b.len() >= out_c, "bias too short");
        }
        if self.in_place {
            assert!(filter.len() >= out_c * self.depth, "filter too short");
        }
        let f_in = self.filter_shape[3];
        let pg = self.per_group;
        let groups = out_c.checked_div(pg).unwrap_or(0);

        if self.direct {
            for g in 0..groups {
                let a = &input[row_start * in_c + g * f_in..];
                self.gemm(g, rows, a, in_c, filter, bias, &mut output_rows[g * pg..]);
            }
            return;
        }

        if self.gather {
            self.run_rows_gathered(input, bias, output_rows, row_start, scratch);
        } else {
            self.run_im2col(input, filter, bias, output_rows, row_start, 0..rows, scratch);
        }
    }

    /// Output rows `range` of `output_rows` (whose first row is pixel
    /// `row_start`), every group: im2col rows for a block of pixels into
    /// `scratch`, then the GEMM on the block.
    #[allow(clippy::too_many_arguments)]
    fn run_im2col(
        &self,
        input: &[f32],
        filter: &[f32],
        bias: Option<&[f32]>,
        output_rows: &mut [f32],
        row_start: usize,
        range: std::ops::Range<usize>,
        scratch: &mut Vec<f32>,
    ) {
        let (k, pg, out_c) = (self.depth, self.per_group, self.out_shape[3]);
        let groups = out_c.checked_div(pg).unwrap_or(0);
        let block = im2col_block_rows(k, range.len());
        if scratch.len() < block * k {
            scratch.resize(block * k, 0.0);
        }
        let mut r = range.start;
        while r < range.end {
            let m = block.min(range.end - r);
            for g in 0..groups {
                self.im2col(input, row_start + r, m, g, &mut scratch[..m * k]);
                self.gemm(g, m, &scratch[..m * k], k, filter, bias, &mut output_rows[r * out_c + g * pg..]);
            }
            r += m;
        }
    }

    /// [`Self::run_rows`] for a gathering plan: the GEMM reads every output
    /// pixel's filter rows straight from the input (one start per pixel, one
    /// segment per filter row), in blocks of consecutive pixels so that
    /// each block streams the weights once. Padded convs first copy the
    /// input rows each block reaches into `scratch` with their zero padding
    /// (about one copy of the input, where im2col copies it `kh * kw`
    /// times), so that every tap lies inside.
    fn run_rows_gathered(
        &self,
        input: &[f32],
        bias: Option<&[f32]>,
        output_rows: &mut [f32],
        row_start: usize,
        scratch: &mut Vec<f32>,
    ) {
        let p = &self.p;
        let [_, _, _, in_c] = self.in_shape;
        let [_, f_h, f_w, _] = self.filter_shape;
        let [_, out_h, out_w, out_c] = self.out_shape;
        let rows = output_rows.len() / out_c;
        let block = gather_block_rows(rows);
        let mut starts = vec![0usize; block.min(rows)];
        // The next pixel's position, stepped along (no divisions per pixel).
        let (mut ox, mut oy, mut b) = (row_start % out_w, (row_start / out_w) % out_h, row_start / (out_w * out_h));
        let mut r = 0;
        while r < rows {
            let m = block.min(rows - r);
            // Only this block's input rows are padded, so the scratch stays
            // a few image rows however large the image.
            let (a, hp, wp, v0) = self.padded_rows(input, row_start + r, m, scratch);
            let bases: Vec<usize> = (0..f_h).map(|fy| fy * p.dilation_h * wp * in_c).collect();
            // Along an output row the starts step by `stride_w` pixels;
            // the row's first is found once.
            let step = p.stride_w * in_c;
            let mut q = 0;
            while q < m {
                let n = (out_w - ox).min(m - q);
                let first = ((b * hp + oy * p.stride_h - v0) * wp + ox * p.stride_w) * in_c;
                for (j, st) in starts[q..q + n].iter_mut().enumerate() {
                    *st = first + j * step;
                }
                q += n;
                ox += n;
                if ox == out_w {
                    (ox, oy) = (0, oy + 1);
                    if oy == out_h {
                        (oy, b) = (0, b + 1);
                    }
                }
            }
            gemm_f32_gather(
                self.isa,
                m,
                a,
                &starts[..m],
                &bases,
                f_w * in_c,
                &self.packed[0],
                bias,
                p.clamp,
                &mut output_rows[r * out_c..(r + m) * out_c],
                out_c,
            );
            r += m;
        }
    }

    /// The input as a gathering plan reads it for output pixels `row_start
    /// .. row_start + rows`: `(values, hp, wp, v0)`, padded row `v` (image
    /// `v / hp`, row `v % hp` counted from the top of the padding) at
    /// `(v - v0) * wp * in_c`, `wp` pixels wide, with every tap of those
    /// pixels inside. Padded convs copy the rows those pixels reach into
    /// `scratch`; unpadded convs read the input itself.
    fn padded_rows<'s>(
        &self,
        input: &'s [f32],
        row_start: usize,
        rows: usize,
        scratch: &'s mut Vec<f32>,
    ) -> (&'s [f32], usize, usize, usize) {
        let p = &self.p;
        let [_, in_h, in_w, in_c] = self.in_shape;
        let [_, f_h, f_w, _] = self.filter_shape;
        let [_, out_h, out_w, _] = self.out_shape;
        let hp = (out_h - 1) * p.stride_h + (f_h - 1) * p.dilation_h + 1;
        let wp = (out_w - 1) * p.stride_w + f_w;
        if p.pad_top == 0 && p.pad_left == 0 && hp <= in_h && wp <= in_w {
            return (input, in_h, in_w, 0);
        }
        let (first, last) = (row_start, row_start + rows - 1);
        let row_of = |pix: usize| (pix / (out_w * out_h), (pix / out_w) % out_h);
        let ((b0, oy0), (b1, oy1)) = (row_of(first), row_of(last));
        let v0 = b0 * hp + oy0 * p.stride_h;
        let v1 = b1 * hp + oy1 * p.stride_h + (f_h - 1) * p.dilation_h + 1;
        let row_len = wp * in_c;
        if scratch.len() < (v1 - v0) * row_len {
            scratch.resize((v1 - v0) * row_len, 0.0);
        }
        let left = p.pad_left.min(wp);
        let cols = in_w.min(wp - left);
        for (v, dst) in (v0..v1).zip(scratch.chunks_exact_mut(row_len.max(1))) {
            let (b, y) = (v / hp, v % hp);
            let iy = y as isize - p.pad_top as isize;
            if iy < 0 || iy >= in_h as isize {
                dst.fill(0.0);
                continue;
            }
            let src = ((b * in_h + iy as usize) * in_w) * in_c;
            dst[..left * in_c].fill(0.0);
            dst[left * in_c..(left + cols) * in_c].copy_from_slice(&input[src..src + cols * in_c]);
            dst[(left + cols) * in_c..].fill(0.0);
        }
        (&scratch[..(v1 - v0) * row_len], hp, wp, v0)
    }

    fn geometry(&self) -> Im2col<'_> {
        Im2col { p: &self.p, in_shape: self.in_shape, filter_shape: self.filter_shape, out_shape: self.out_shape }
    }

    /// Receptive fields of output pixels `first .. first + m`, group `g`:
    /// `m` rows of `kh * kw * f_in` values in filter order, zeros for taps
    /// outside the input.
    fn im2col(&self, input: &[f32], first: usize, m: usize, g: usize, dst: &mut [f32]) {
        self.geometry().rows(input, first, m, g, self.depth, dst, 0.0, |src, d| d.copy_from_slice(src));
    }
}

/// The geometry of an im2col: one row per output pixel, holding its
/// receptive field in filter order (row, column, channel). Shared by the
/// float, int8 and hybrid GEMM convolutions, which differ only in how an
/// input run becomes GEMM operands (`convert`).
pub(crate) struct Im2col<'a> {
    pub p: &'a Conv2dParams,
    pub in_shape: [usize; 4],
    pub filter_shape: [usize; 4],
    pub out_shape: [usize; 4],
}

impl Im2col<'_> {
    /// Number of pixels from output column `ox` on (at most `limit`, not
    /// past the row's end) whose taps all lie inside the input
    /// horizontally: 0 when `ox`'s do not.
    pub(crate) fn interior_run(&self, ox: usize, limit: usize) -> usize {
        let [_, _, f_w, _] = self.filter_shape;
        let (in_w, out_w) = (self.in_shape[2], self.out_shape[2]);
        let span = ((f_w.max(1) - 1) * self.p.dilation_w) as isize;
        let interior = |ox: usize| {
            let ix0 = (ox * self.p.stride_w) as isize - self.p.pad_left as isize;
            ix0 >= 0 && ix0 + span < in_w as isize
        };
        (0..limit.min(out_w.saturating_sub(ox))).take_while(|&q| interior(ox + q)).count()
    }

    /// Rows for output pixels `first .. first + m`, group `g`, each
    /// `dst.len() / m` long (at least `kh * kw * f_in`; the rest is
    /// `D::default()`, taps outside the input are `pad`). `convert(src,
    /// dst)` turns a run of input values into operands of the same length.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rows<S: Copy, D: Copy + Default>(
        &self,
        input: &[S],
        first: usize,
        m: usize,
        g: usize,
        k: usize,
        dst: &mut [D],
        pad: D,
        convert: impl Fn(&[S], &mut [D]),
    ) {
        let [_, in_h, in_w, in_c] = self.in_shape;
        let [_, _, f_w, f_in] = self.filter_shape;
        let [_, out_h, out_w, _] = self.out_shape;
        let p = self.p;
        let c0 = g * f_in;
        let row_len = dst.len().checked_div(m).unwrap_or(0);
        // A whole filter row is one contiguous run of the input when the
        // channels are not split and the taps are adjacent.
        let contiguous_rows = f_in == in_c && p.dilation_w == 1;
        // A pointwise conv's receptive fields are the input pixels themselves.
        let pointwise = contiguous_rows
            && f_w == 1
            && self.filter_shape[1] == 1
            && p.stride_h == 1
            && p.stride_w == 1
            && p.pad_top == 0
            && p.pad_left == 0
            && out_w == in_w
            && out_h == in_h;
        if pointwise && row_len == k {
            convert(&input[first * in_c..(first + m) * in_c], &mut dst[..m * k]);
            return;
        }
        // The pixel coordinates advance with the rows (no division per row).
        let (mut ox, mut oy, mut b) = if out_w == 0 || out_h == 0 {
            (0, 0, 0)
        } else {
            (first % out_w, (first / out_w) % out_h, first / (out_w * out_h))
        };
        let seg = f_w * f_in;
        let mut r = 0;
        while r < m {
            // A run of pixels along one output row whose filter rows all lie
            // inside the input horizontally: filter row `fy` of pixel `q` is
            // one contiguous run, `stride_w * in_c` after pixel `q - 1`'s.
            // Going filter row by filter row keeps the loop to one copy per
            // (pixel, filter row), which matters when the runs are short
            // (a first conv's 3x3 RGB taps: 9 values).
            let run = if contiguous_rows { self.interior_run(ox, m - r) } else { 0 };
            let np = run.max(1);
            let block = &mut dst[r * row_len..(r + np) * row_len];
            if row_len > k {
                for row in block.chunks_exact_mut(row_len) {
                    zero_short(&mut row[k..]);
                }
            }
            let iy0 = (oy * p.stride_h) as isize - p.pad_top as isize;
            let ix0 = (ox * p.stride_w) as isize - p.pad_left as isize;
            for fy in 0..self.filter_shape[1] {
                let iy = iy0 + (fy * p.dilation_h) as isize;
                let at = fy * seg;
                if iy < 0 || iy >= in_h as isize {
                    for row in block.chunks_exact_mut(row_len.max(1)) {
                        row[at..at + seg].fill(pad);
                    }
                    continue;
                }
                let line = (b * in_h + iy as usize) * in_w;
                if run > 0 {
                    let step = p.stride_w * in_c;
                    let mut s = (line + ix0 as usize) * in_c;
                    for row in block.chunks_exact_mut(row_len.max(1)) {
                        convert(&input[s..s + seg], &mut row[at..at + seg]);
                        s += step;
                    }
                    continue;
                }
                // One pixel at an edge (or channel groups, or dilated
                // taps): tap by tap, zeros outside the input.
                let frow = &mut block[at..at + seg];
                for (fx, tap) in frow.chunks_exact_mut(f_in.max(1)).enumerate() {
                    let ix = ix0 + (fx * p.dilation_w) as isize;
                    if ix < 0 || ix >= in_w as isize {
                        tap.fill(pad);
                    } else {
                        let s = (line + ix as usize) * in_c + c0;
                        convert(&input[s..s + f_in], tap);
                    }
                }
            }
            for _ in 0..np {
                ox += 1;
                if ox == out_w {
                    ox = 0;
                    oy += 1;
                    if oy == out_h {
                        oy = 0;
                        b += 1;
                    }
                }
            }
            r += np;
        }
    }
}

/// `t.fill(D::default())` for the 1-3 padding values that round a row's
/// depth up to the kernel's step: stores, not a `memset` call per row (a
/// first conv's 12544 rows of 27 + 1 bytes spent 16% of its time there).
#[inline(always)]
fn zero_short<D: Copy + Default>(t: &mut [D]) {
    let z = D::default();
    match t {
        [] => {}
        [a] => *a = z,
        [a, b] => (*a, *b) = (z, z),
        [a, b, c] => (*a, *b, *c) = (z, z, z),
        _ => t.fill(z),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::ClampF32;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::{assert_close, gflops, Rng};
    use crate::reference::conv::conv2d_f32;
    use crate::reference::padding::{Padding, Padding2d};

    fn abs(v: &[f32]) -> Vec<f32> {
        v.iter().map(|x| x.abs()).collect()
    }

    struct Case {
        p: Conv2dParams,
        in_shape: [usize; 4],
        filter_shape: [usize; 4],
        out_shape: [usize; 4],
    }

    fn random_case(rng: &mut Rng, i: usize) -> Case {
        let pointwise = i.is_multiple_of(4);
        let groups = if i % 5 == 1 { rng.range(2, 4) } else { 1 };
        let f_in = rng.range(1, 20);
        let in_c = f_in * groups;
        let out_c = groups * rng.range(1, 40 / groups);
        let (kh, kw) = if pointwise { (1, 1) } else { (rng.range(1, 5), rng.range(1, 5)) };
        let (sh, sw) = if pointwise { (1, 1) } else { (rng.range(1, 3), rng.range(1, 3)) };
        let (dh, dw) = if pointwise { (1, 1) } else { (rng.range(1, 3), rng.range(1, 3)) };
        let padding = if pointwise || rng.range(0, 2) == 0 { Padding::Valid } else { Padding::Same };
        let (in_h, in_w) = (rng.range(1, 14), rng.range(1, 14));
        let batches = rng.range(1, 3);
        let w = Padding2d::compute(padding, in_h, in_w, kh, kw, sh, sw, dh, dw);
        let clamp = if i.is_multiple_of(2) { ClampF32::RELU6 } else { ClampF32::NONE };
        Case {
            p: Conv2dParams {
                stride_h: sh,
                stride_w: sw,
                dilation_h: dh,
                dilation_w: dw,
                pad_top: w.padding.top,
                pad_left: w.padding.left,
                clamp,
            },
            in_shape: [batches, in_h, in_w, in_c],
            filter_shape: [out_c, kh, kw, f_in],
            out_shape: [batches, w.out_h, w.out_w, out_c],
        }
    }

    #[test]
    fn conv_matches_reference_on_random_shapes() {
        let mut rng = Rng::new(0xc0117);
        let (mut saw_direct, mut saw_gather) = (0, 0);
        for i in 0..200usize {
            let Case { p, in_shape, filter_shape, out_shape } = random_case(&mut rng, i);
            let input = rng.vec(in_shape.iter().product());
            let filter = rng.vec(filter_shape.iter().product());
            let bias = if i.is_multiple_of(3) { None } else { Some(rng.vec(out_shape[3])) };
            let out_len: usize = out_shape.iter().product();
            let mut want = vec![0.0; out_len];
            conv2d_f32(&p, &input, in_shape, &filter, filter_shape, bias.as_deref(), &mut want, out_shape);
            let mut scale = vec![0.0; out_len];
            let p_abs = Conv2dParams { clamp: ClampF32::NONE, ..p };
            let bias_abs = bias.as_deref().map(abs);
            conv2d_f32(
                &p_abs,
                &abs(&input),
                in_shape,
                &abs(&filter),
                filter_shape,
                bias_abs.as_deref(),
                &mut scale,
                out_shape,
            );
            for (&isa, pack) in available_levels().iter().flat_map(|l| [(l, true), (l, false)]) {
                let plan = Conv2dF32Plan::new(isa, &p, in_shape, &filter, filter_shape, out_shape, pack);
                assert!(plan.supported());
                saw_direct += plan.direct as usize;
                saw_gather += plan.gather as usize;
                let ctx = format!(
                    "case {i} {isa:?} pack {pack} in {in_shape:?} filter {filter_shape:?} out {out_shape:?} {p:?}"
                );
                let mut scratch = Vec::new();
                let mut got = vec![f32::NAN; out_len];
                plan.run(&input, &filter, bias.as_deref(), &mut got, &mut scratch);
                assert_close(&got, &want, &scale, 1e-5, &ctx);
                // The same, in uneven chunks of rows.
                if plan.rows() > 1 {
                    let chunk = rng.range(1, plan.rows());
                    let mut got = vec![f32::NAN; out_len];
                    for (ci, rows) in got.chunks_mut(chunk * plan.row_len()).enumerate() {
                        plan.run_rows(&input, &filter, bias.as_deref(), rows, ci * chunk, &mut scratch);
                    }
                    assert_close(&got, &want, &scale, 1e-5, &format!("{ctx} chunk {chunk}"));
                }
            }
        }
        assert!(saw_direct > 0 && saw_gather > 0, "direct {saw_direct}, gathering {saw_gather} plans");
    }

    #[test]
    fn gemv_split_by_channels_matches_reference() {
        let mut rng = Rng::new(0x6e);
        // One output pixel: a 1x1 conv on a 1x1 image (direct) and a 3x3
        // conv over a 3x3 image (im2col of the single field).
        for (k, in_hw) in [(1usize, 1usize), (3, 3)] {
            let (in_c, out_c) = (rng.range(1, 40), rng.range(1, 70));
            let p = Conv2dParams {
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                pad_top: 0,
                pad_left: 0,
                clamp: ClampF32::RELU6,
            };
            let (in_shape, filter_shape, out_shape) = ([1, in_hw, in_hw, in_c], [out_c, k, k, in_c], [1, 1, 1, out_c]);
            let input = rng.vec(in_hw * in_hw * in_c);
            let filter = rng.vec(out_c * k * k * in_c);
            let bias = rng.vec(out_c);
            let mut want = vec![0.0; out_c];
            conv2d_f32(&p, &input, in_shape, &filter, filter_shape, Some(&bias), &mut want, out_shape);
            for &isa in &available_levels() {
                let plan = Conv2dF32Plan::new(isa, &p, in_shape, &filter, filter_shape, out_shape, true);
                assert!(plan.is_gemv(), "a single output pixel runs in place");
                let split = rng.range(0, out_c);
                let mut got = vec![f32::NAN; out_c];
                let (lo, hi) = got.split_at_mut(split);
                plan.run_gemv_cols(&input, &filter, Some(&bias), lo, 0);
                plan.run_gemv_cols(&input, &filter, Some(&bias), hi, split);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{isa:?} k {k}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn deep_convs_gather_and_slice_their_rows() {
        // Depths past one GEMM slice, gathered from the input: 3x3x300
        // (filter rows of 900, each cut in two), 1x7x100 (one row of 700)
        // and 7x1x100 (seven rows of 100, several per slice); the edge
        // pixels go through im2col blocks.
        let mut rng = Rng::new(7);
        for (kh, kw, in_c, pad_top, pad_left) in [(3, 3, 300, 1, 1), (1, 7, 100, 0, 3), (7, 1, 100, 3, 0)] {
            let p = Conv2dParams {
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                pad_top,
                pad_left,
                clamp: ClampF32::RELU,
            };
            let (in_shape, filter_shape, out_shape) = ([1, 7, 9, in_c], [21, kh, kw, in_c], [1, 7, 9, 21]);
            let input = rng.vec(in_shape.iter().product());
            let filter = rng.vec(filter_shape.iter().product());
            let bias = rng.vec(21);
            let mut want = vec![0.0; 7 * 9 * 21];
            conv2d_f32(&p, &input, in_shape, &filter, filter_shape, Some(&bias), &mut want, out_shape);
            let mut scale = vec![0.0; want.len()];
            let p_abs = Conv2dParams { clamp: ClampF32::NONE, ..p };
            conv2d_f32(
                &p_abs,
                &abs(&input),
                in_shape,
                &abs(&filter),
                filter_shape,
                Some(&abs(&bias)),
                &mut scale,
                out_shape,
            );
            for (&isa, pack) in available_levels().iter().flat_map(|l| [(l, true), (l, false)]) {
                let plan = Conv2dF32Plan::new(isa, &p, in_shape, &filter, filter_shape, out_shape, pack);
                assert_eq!(plan.gather, pack, "packed plans gather");
                let mut got = vec![0.0; want.len()];
                plan.run(&input, &filter, Some(&bias), &mut got, &mut Vec::new());
                assert_close(&got, &want, &scale, 1e-5, &format!("{kh}x{kw}x{in_c} {isa:?} pack {pack}"));
            }
        }
    }

    #[test]
    fn im2col_blocks_are_whole_tiles_of_about_equal_size() {
        for k in [9, 27, 288, 2592, 4032] {
            let widest = (IM2COL_BLOCK / k).clamp(12, 240) / 6 * 6;
            for rows in 1..20000 {
                let b = im2col_block_rows(k, rows);
                assert!(b >= 1 && b <= rows && (rows <= widest || b <= widest + 60), "k {k} rows {rows}: {b}");
                if b < rows {
                    let last = rows - (rows.div_ceil(b) - 1) * b;
                    assert!(b.is_multiple_of(6) && last >= 6, "k {k} rows {rows}: blocks of {b}, last {last}");
                }
            }
        }
    }

    /// `cargo test --release -p ferrolite-kernels --lib optimized::conv -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_conv() {
        let mut rng = Rng::new(3);
        let cases = [
            ("conv 1x1 112x112x64->64", [1, 112, 112, 64], [64, 1, 1, 64], [1, 112, 112, 64], 1, 0),
            ("conv 3x3/2 224x224x3->32", [1, 224, 224, 3], [32, 3, 3, 3], [1, 112, 112, 32], 2, 0),
            ("conv 3x3 56x56x64->64", [1, 56, 56, 64], [64, 3, 3, 64], [1, 56, 56, 64], 1, 1),
            ("conv 3x3 147x147x32->64", [1, 147, 147, 32], [64, 3, 3, 32], [1, 147, 147, 64], 1, 1),
            ("conv 3x3 149x149x32->32 valid", [1, 149, 149, 32], [32, 3, 3, 32], [1, 147, 147, 32], 1, 0),
            ("conv 3x3/2 35x35x288->384 valid", [1, 35, 35, 288], [384, 3, 3, 288], [1, 17, 17, 384], 2, 0),
            ("conv 1x1 17x17x2592->384 (same gemm)", [1, 17, 17, 2592], [384, 1, 1, 2592], [1, 17, 17, 384], 1, 0),
            ("conv 3x3 8x8x448->384", [1, 8, 8, 448], [384, 3, 3, 448], [1, 8, 8, 384], 1, 1),
            ("conv 1x1 8x8x4032->384 (same gemm)", [1, 8, 8, 4032], [384, 1, 1, 4032], [1, 8, 8, 384], 1, 0),
        ];
        for (name, in_shape, filter_shape, out_shape, stride, pad) in cases {
            let p = Conv2dParams {
                stride_h: stride,
                stride_w: stride,
                dilation_h: 1,
                dilation_w: 1,
                pad_top: pad,
                pad_left: pad,
                clamp: ClampF32::RELU6,
            };
            let input = rng.vec(in_shape.iter().product());
            let filter = rng.vec(filter_shape.iter().product());
            let bias = rng.vec(out_shape[3]);
            let mut out = vec![0.0; out_shape.iter().product()];
            let flops = 2.0 * out.len() as f64 * (filter_shape[1] * filter_shape[2] * filter_shape[3]) as f64;
            let mut scratch = Vec::new();
            for &isa in &available_levels() {
                let plan = Conv2dF32Plan::new(isa, &p, in_shape, &filter, filter_shape, out_shape, true);
                let g = gflops(flops, || plan.run(&input, &filter, Some(&bias), &mut out, &mut scratch));
                println!("{name:28} {:>9}: {g:6.1} GFLOP/s", isa.name());
            }
            let g = gflops(flops, || {
                conv2d_f32(&p, &input, in_shape, &filter, filter_shape, Some(&bias), &mut out, out_shape)
            });
            println!("{name:28} reference: {g:6.1} GFLOP/s");
        }
    }
}
