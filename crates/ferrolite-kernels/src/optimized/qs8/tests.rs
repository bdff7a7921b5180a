//! `qs8` against the reference kernels, bit for bit, at every ISA level
//! the CPU has.

use super::*;
use crate::activation::ClampF32;
use crate::optimized::isa::available_levels;
use crate::optimized::testutil::{panel_ranges, ConvGeom, ConvGeomLimits, Rng};
use crate::quant::FusedActivation;
use crate::reference::padding::{Padding, Padding2d};
use crate::reference::quantized::conv::Accumulator;
use crate::reference::quantized::{
    conv2d_i8, conv2d_u8, depthwise_conv2d_i8, depthwise_conv2d_u8, fully_connected_i8, fully_connected_u8,
};

fn i8s(rng: &mut Rng, n: usize) -> Vec<i8> {
    (0..n).map(|_| rng.next_u64() as u8 as i8).collect()
}
fn u8s(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next_u64() as u8).collect()
}
fn bias(rng: &mut Rng, n: usize) -> Vec<i32> {
    (0..n).map(|_| rng.range(0, 40001) as i32 - 20000).collect()
}
/// [`bias`], but every fifth case one channel's bias near `±2^31`: sums
/// that large leave `RequantMode::Short` for the full requantisation.
fn bias_for_case(rng: &mut Rng, n: usize, case: usize) -> Vec<i32> {
    let mut b = bias(rng, n);
    if case % 5 == 4 {
        let c = rng.range(0, n);
        b[c] = rng.pick(&[1, -1]) * (i32::MAX - (1 << 24) - rng.range(0, 1 << 20) as i32);
    }
    b
}
fn scale(rng: &mut Rng) -> f32 {
    0.001 + 0.05 * (rng.f32() + 1.0)
}
fn act(rng: &mut Rng) -> FusedActivation {
    rng.pick(&[FusedActivation::None, FusedActivation::Relu, FusedActivation::Relu6])
}
/// Zero points weighted towards the extremes.
fn zp(rng: &mut Rng, lo: i32, hi: i32) -> i32 {
    match rng.range(0, 4) {
        0 => lo,
        1 => hi,
        _ => lo + rng.range(0, (hi - lo + 1) as usize) as i32,
    }
}

/// Which range a random layer's requantisation multipliers fall in.
#[derive(Clone, Copy, PartialEq)]
enum Multipliers {
    /// Down to 1e-7 (right shifts past `SHORT_MAX_RSH` in most
    /// per-channel layers: the full requantisation).
    Small,
    /// The largest in 0.05 .. 0.95, as in trained models (right
    /// shifts of 1 to about 12: `RequantMode::Short`).
    Typical,
    /// Every one above 1 (the requantisation's left shift runs).
    AboveOne,
}

/// Int8 per-channel (or, one time in three, per-tensor) parameters;
/// the multipliers small or typical at random.
fn q_i8(rng: &mut Rng, channels: usize) -> ConvQuantParams {
    let m = if rng.range(0, 2) == 0 { Multipliers::Small } else { Multipliers::Typical };
    q_i8_with(rng, channels, m)
}
fn q_i8_with(rng: &mut Rng, channels: usize, m: Multipliers) -> ConvQuantParams {
    let scales: Vec<f32> =
        if rng.range(0, 3) == 0 { vec![scale(rng)] } else { (0..channels).map(|_| scale(rng) * 0.02).collect() };
    let (izp, ozp) = (zp(rng, -128, 127), zp(rng, -128, 127));
    let in_scale = scale(rng);
    let (lo, hi) = scales.iter().fold((f32::INFINITY, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let out_scale = match m {
        Multipliers::Small => scale(rng) * 2.0,
        Multipliers::Typical => in_scale * hi / (0.05 + 0.9 * rng.f32().abs()),
        Multipliers::AboveOne => in_scale * lo / (1.5 + 3.0 * rng.f32().abs()),
    };
    ConvQuantParams::per_channel(in_scale, izp, &scales, out_scale, ozp, act(rng), -128, 127).unwrap()
}
fn q_u8(rng: &mut Rng) -> ConvQuantParams {
    let (izp, fzp, ozp) = (zp(rng, 0, 255), zp(rng, 0, 255), zp(rng, 0, 255));
    ConvQuantParams::per_tensor(scale(rng), izp, scale(rng) * 0.02, fzp, scale(rng) * 2.0, ozp, act(rng), 0, 255)
        .unwrap()
}

fn geom(rng: &mut Rng, i: usize, in_c: usize) -> ConvGeom {
    let lim =
        ConvGeomLimits { stride_h: 3, stride_w: 3, dilation_h: 3, dilation_w: 3, batches: 3, depth_multiplier: 3 };
    ConvGeom::random(rng, i, in_c, &lim, |_| ClampF32::NONE)
}

/// Run `plan` whole and in uneven row chunks; both must equal `want`.
fn check_rows<T: Q8 + PartialEq + std::fmt::Debug>(
    rows: usize,
    row_len: usize,
    want: &[T],
    rng: &mut Rng,
    ctx: &str,
    mut run: impl FnMut(&mut [T], usize, &mut Qs8Scratch),
) {
    let mut scratch = Qs8Scratch::new();
    let mut got = vec![T::default(); want.len()];
    run(&mut got, 0, &mut scratch);
    assert_eq!(got, want, "{ctx}");
    if rows > 1 {
        let chunk = rng.range(1, rows);
        let mut got = vec![T::default(); want.len()];
        for (ci, part) in got.chunks_mut(chunk * row_len).enumerate() {
            run(part, ci * chunk, &mut scratch);
        }
        assert_eq!(got, want, "{ctx} chunk {chunk}");
    }
}

#[test]
fn requant_matches_finish_on_extremes() {
    let mut rng = Rng::new(0x7e9);
    let specials = [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX, 1 << 30, -(1 << 30), 12345, -12345];
    for i in 0..400usize {
        let n = rng.range(1, 30);
        let mut q = q_i8(&mut rng, n);
        // Raw multipliers and shifts, extremes included.
        q.output_multiplier =
            (0..n).map(|_| if rng.range(0, 4) == 0 { rng.pick(&specials) } else { rng.next_u64() as i32 }).collect();
        q.output_shift = (0..n).map(|_| rng.range(0, 62) as i32 - 31).collect();
        if i % 3 == 0 {
            // No clamp: the i8 cast keeps the low bits of every result.
            (q.act_min, q.act_max) = (i32::MIN, i32::MAX);
        }
        if i % 5 == 0 {
            q.output_multiplier.truncate(1);
            q.output_shift.truncate(1);
        }
        let acc: Vec<i32> = (0..n)
            .map(|_| if rng.range(0, 4) == 0 { rng.pick(&specials) } else { rng.next_u64() as i32 >> rng.range(0, 31) })
            .collect();
        let b = if i % 2 == 0 { Some((0..n).map(|_| rng.next_u64() as i32 >> 8).collect::<Vec<_>>()) } else { None };
        let want: Vec<i8> = (0..n).map(|c| finish(&q, acc[c], b.as_deref(), c, q.output_offset)).collect();
        for &isa in &available_levels() {
            let r = Requant::new(&q, n);
            let mut got = vec![0i8; n];
            r.apply(isa, &q, &acc, b.as_deref(), 0, &mut got);
            assert_eq!(got, want, "case {i} {isa:?} {q:?} acc {acc:?}");
        }
    }
}

#[test]
fn short_requant_matches_finish_within_its_bounds() {
    // The short mode's claim: for sums below 2^30 in magnitude and right
    // shifts 1..=21, `(hm + round_oc + (hm >> 31)) >> e` is the
    // reference's rounding divide plus the output offset, ties included.
    let mut rng = Rng::new(0x5407);
    let mut ties = 0;
    for i in 0..3000usize {
        let mut q = q_i8(&mut rng, 8);
        q.output_multiplier = (0..8).map(|_| (1 << 30) + (rng.next_u64() as i32 & 0x3fff_ffff)).collect();
        q.output_shift = (0..8).map(|_| -(rng.range(1, SHORT_MAX_RSH as usize + 1) as i32)).collect();
        q.output_offset = rng.range(0, 511) as i32 - 255;
        if i % 4 == 0 {
            (q.act_min, q.act_max) = (i32::MIN, i32::MAX);
        }
        let r = Requant::new(&q, 8);
        assert!(r.short_ok && r.mode(0, None) == RequantMode::Short, "case {i}: {q:?}");
        let lim = (1i64 << 30) - 1;
        // Small right shifts make ties of the rounding divide common
        // (counted below).
        let x: [i32; 8] = std::array::from_fn(|_| match rng.range(0, 6) {
            0 => rng.pick(&[lim, -lim, 0, 1, -1]) as i32,
            _ => (rng.next_u64() as i32) >> rng.range(2, 31),
        });
        // `finish` without its cast to an 8-bit type.
        let want: [i32; 8] = std::array::from_fn(|c| {
            let (m, s) = q.channel(c);
            x[c].requantize(m, s).wrapping_add(q.output_offset).max(q.act_min).min(q.act_max)
        });
        for ((&xc, &m), &s) in x.iter().zip(&q.output_multiplier).zip(&q.output_shift) {
            let e = -s;
            let hm = ((xc as i64 * m as i64 + (1 << 30)) >> 31) as i32;
            ties += usize::from(hm & ((1 << e) - 1) == 1 << (e - 1));
        }
        // (The short mode is an AVX2 epilogue; elsewhere only the
        // bounds below are checked.)
        #[cfg(not(target_arch = "x86_64"))]
        let _ = want;
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = Avx2Fma::new(IsaLevel::Avx2Fma) {
            let got = avx2::requant_short8(t, &r, 0, x, [q.output_offset, q.act_min, q.act_max]);
            assert_eq!(got, want, "case {i}: x {x:?} {q:?}");
        }
    }
    assert!(ties > 100, "only {ties} ties drawn");
    // Past the bound the formula does go wrong (so the bound matters):
    // a sum near 2^31 with the largest multiplier wraps `hm + round_oc`.
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(IsaLevel::Avx2Fma) {
        let mut q = q_i8(&mut rng, 8);
        q.output_multiplier = vec![i32::MAX; 8];
        q.output_shift = vec![-SHORT_MAX_RSH; 8];
        (q.output_offset, q.act_min, q.act_max) = (255, i32::MIN, i32::MAX);
        let x = [i32::MAX - 5; 8];
        let (m, s) = q.channel(0);
        let want = x[0].requantize(m, s) + 255;
        let got = avx2::requant_short8(t, &Requant::new(&q, 8), 0, x, [255, i32::MIN, i32::MAX]);
        assert_ne!(got[0], want, "a sum of 2^31 - 6 is outside the short mode");
    }
    // And the mode is not offered outside those bounds.
    let mut q = q_i8(&mut rng, 2);
    q.output_multiplier = vec![1 << 30; 2];
    q.output_shift = vec![-3, -(SHORT_MAX_RSH + 1)];
    assert!(!Requant::new(&q, 2).short_ok, "right shift 22");
    q.output_shift = vec![-3, 0];
    assert!(!Requant::new(&q, 2).short_ok, "right shift 0");
    q.output_shift = vec![-3, -4];
    let r = Requant::new(&q, 2);
    assert_eq!(r.mode((1 << 30) - 101, Some(&[100, -100])), RequantMode::Short);
    assert_ne!(r.mode((1 << 30) - 100, Some(&[100, -100])), RequantMode::Short, "sums may reach 2^30");
    // The sum bound: the largest |x + input offset| times the largest
    // |w + filter offset| times the depth.
    assert_eq!(sum_bound::<i8>(9, 128, 0), 255 * 128 * 9);
    assert_eq!(sum_bound::<u8>(4, -255, -3), 255 * 252 * 4);
}

#[test]
fn product_requant_matches_finish_within_its_bounds() {
    // `vnni::product16`'s claim: for the short mode's sums and shifts and
    // multipliers above 2^30, `hi(u * 2m + K) + (u >> 31) >> e` from
    // `u = x + 2^31` is the reference's requantisation plus the output
    // offset, ties included; and no constants where some multiplier is
    // 2^30 or less.
    let mut rng = Rng::new(0x9a0d);
    let mut ties = 0;
    for i in 0..3000usize {
        let n = rng.range(1, 40);
        let mut q = q_i8(&mut rng, n);
        q.output_multiplier = (0..n).map(|_| (1 << 30) + 1 + (rng.next_u64() as i32 & 0x3fff_fffe)).collect();
        if i % 7 == 0 {
            q.output_multiplier[rng.range(0, n)] = rng.pick(&[(1 << 30) + 1, i32::MAX]);
        }
        q.output_shift = (0..n).map(|_| -(rng.range(1, SHORT_MAX_RSH as usize + 1) as i32)).collect();
        q.output_offset = rng.range(0, 511) as i32 - 255;
        let r = Requant::new(&q, n);
        let c0 = rng.range(0, n);
        let consts = r.product_rows(c0, n - c0).expect("every multiplier above 2^30");
        let stride = (n - c0).div_ceil(NR) * NR;
        let lim = (1i64 << 30) - 1;
        let x: Vec<i32> = (c0..n)
            .map(|_| match rng.range(0, 6) {
                0 => rng.pick(&[lim, -lim, 0, 1, -1, 2, -2]) as i32,
                _ => (rng.next_u64() as i32) >> rng.range(2, 31),
            })
            .collect();
        let want: Vec<i32> = x
            .iter()
            .enumerate()
            .map(|(i, &xc)| {
                let (m, s) = q.channel(c0 + i);
                let hm = ((xc as i64 * m as i64 + (1 << 30)) >> 31) as i32;
                ties += usize::from(hm & ((1 << -s) - 1) == 1 << (-s - 1));
                xc.requantize(m, s) + q.output_offset
            })
            .collect();
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (want, consts, stride);
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = crate::optimized::isa::Avx512::new(IsaLevel::Avx512) {
            for (p, (xs, want)) in x.chunks(NR).zip(want.chunks(NR)).enumerate() {
                let mut u = [0i32; NR];
                for (u, &x) in u.iter_mut().zip(xs) {
                    *u = x ^ i32::MIN;
                }
                let got = vnni::product_lanes(t, u, &consts[p * NR..], stride);
                assert_eq!(&got[..xs.len()], want, "case {i} panel {p}: x {xs:?} {q:?}");
            }
        }
    }
    assert!(ties > 100, "only {ties} ties drawn");
    let mut q = q_i8(&mut rng, 3);
    q.output_shift = vec![-3; 3];
    q.output_multiplier = vec![(1 << 30) + 5, 1 << 30, (1 << 30) + 5];
    let r = Requant::new(&q, 3);
    assert!(r.short_ok && r.product_rows(0, 3).is_none(), "a multiplier of 2^30");
    assert!(r.product_rows(2, 1).is_some(), "the channels after it");
}

#[test]
fn gemm_i32_matches_naive() {
    let mut rng = Rng::new(1);
    for _ in 0..50 {
        let (m, n, k) = (rng.range(1, 15), rng.range(1, 40), rng.range(1, 70));
        let a: Vec<i16> = (0..m * k).map(|_| rng.range(0, 511) as i16 - 255).collect();
        let w: Vec<i16> = (0..n * k).map(|_| rng.range(0, 511) as i16 - 255).collect();
        let want: Vec<i32> =
            (0..m * n).map(|i| (0..k).map(|d| a[i / n * k + d] as i32 * w[i % n * k + d] as i32).sum()).collect();
        for &isa in &available_levels() {
            assert_eq!(gemm_plain(isa, &a, &w, m, n, k), want, "{isa:?} m{m} n{n} k{k}");
        }
    }
}

#[test]
fn conv_matches_reference_exactly() {
    let mut rng = Rng::new(0x9508);
    let mut vnni_cases = 0;
    let mut product_cases = 0;
    for i in 0..160usize {
        let groups = if i % 5 == 1 { rng.range(2, 4) } else { 1 };
        let f_in = rng.range(1, 24);
        let g = geom(&mut rng, i, f_in * groups);
        let out_c = groups * rng.range(1, 40 / groups);
        let filter_shape = [out_c, g.kh, g.kw, f_in];
        let out_shape = [g.in_shape[0], g.out_hw.0, g.out_hw.1, out_c];
        let out_len: usize = out_shape.iter().product();
        let b = if i.is_multiple_of(3) { None } else { Some(bias_for_case(&mut rng, out_c, i)) };
        let rows = out_len / out_c;
        if i % 2 == 0 {
            // Every fourth case with multipliers above 1 (the GEMM's
            // kernel with the left shift, not the plain one).
            let m = match i % 4 {
                2 => Multipliers::AboveOne,
                0 => Multipliers::Typical,
                _ => Multipliers::Small,
            };
            let q = q_i8_with(&mut rng, out_c, m);
            let x = i8s(&mut rng, g.in_shape.iter().product());
            let w = i8s(&mut rng, filter_shape.iter().product());
            let mut want = vec![0i8; out_len];
            conv2d_i8(&g.p, &q, &x, g.in_shape, &w, filter_shape, b.as_deref(), &mut want, out_shape);
            for &isa in &available_levels() {
                let plan = Qs8ConvPlan::new(isa, &g.p, &q, g.in_shape, &w, filter_shape, out_shape);
                assert!(plan.supported());
                vnni_cases += usize::from(plan.uses_vnni());
                product_cases += usize::from(plan.uses_product(b.as_deref()));
                let ctx = format!("i8 case {i} {isa:?} {:?} {filter_shape:?} {:?}", g.in_shape, g.p);
                check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, s| plan.run_rows(&x, b.as_deref(), o, r0, s));
            }
        } else {
            let q = q_u8(&mut rng);
            let x = u8s(&mut rng, g.in_shape.iter().product());
            let w = u8s(&mut rng, filter_shape.iter().product());
            let mut want = vec![0u8; out_len];
            conv2d_u8(&g.p, &q, &x, g.in_shape, &w, filter_shape, b.as_deref(), &mut want, out_shape);
            for &isa in &available_levels() {
                let plan = Qs8ConvPlan::new(isa, &g.p, &q, g.in_shape, &w, filter_shape, out_shape);
                assert!(plan.supported());
                let ctx = format!("u8 case {i} {isa:?} {:?} {filter_shape:?} {:?}", g.in_shape, g.p);
                check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, s| plan.run_rows(&x, b.as_deref(), o, r0, s));
            }
        }
    }
    // Where the CPU has VNNI, most int8 cases ran on it.
    if crate::optimized::isa::cpu_level() >= IsaLevel::Avx512Vnni {
        assert!(vnni_cases > 40, "only {vnni_cases} cases on the VNNI path");
        assert!(product_cases > 10, "only {product_cases} cases in the product form");
    }
}

#[test]
fn depthwise_matches_reference_exactly() {
    let mut rng = Rng::new(0xd3e9);
    for i in 0..160usize {
        let in_c = rng.range(1, 40);
        let g = geom(&mut rng, i, in_c);
        let dm = g.dm;
        let p = DepthwiseParams {
            stride_h: g.p.stride_h,
            stride_w: g.p.stride_w,
            dilation_h: g.p.dilation_h,
            dilation_w: g.p.dilation_w,
            pad_top: g.p.pad_top,
            pad_left: g.p.pad_left,
            depth_multiplier: dm,
            clamp: ClampF32::NONE,
        };
        let out_c = in_c * dm;
        let filter_shape = [1, g.kh, g.kw, out_c];
        let out_shape = [g.in_shape[0], g.out_hw.0, g.out_hw.1, out_c];
        let out_len: usize = out_shape.iter().product();
        let rows = out_len / out_c;
        let b = if i.is_multiple_of(3) { None } else { Some(bias_for_case(&mut rng, out_c, i)) };
        if i % 2 == 0 {
            let mut q = q_i8(&mut rng, out_c);
            if i % 10 == 4 {
                // A zero point no 8-bit (or 16-bit) value reaches: the
                // offset inputs do not fit i16.
                q.input_offset = if i % 20 == 4 { 40_000 } else { -40_000 };
            }
            let x = i8s(&mut rng, g.in_shape.iter().product());
            let w = i8s(&mut rng, filter_shape.iter().product());
            let mut want = vec![0i8; out_len];
            depthwise_conv2d_i8(&p, &q, &x, g.in_shape, &w, filter_shape, b.as_deref(), &mut want, out_shape);
            for &isa in &available_levels() {
                let plan = Qs8DepthwisePlan::new(isa, &p, &q, g.in_shape, &w, filter_shape, out_shape);
                assert!(plan.supported());
                let ctx = format!("i8 case {i} {isa:?} {:?} {filter_shape:?} {p:?}", g.in_shape);
                check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, s| plan.run_rows(&x, b.as_deref(), o, r0, s));
            }
        } else {
            let q = q_u8(&mut rng);
            let x = u8s(&mut rng, g.in_shape.iter().product());
            let w = u8s(&mut rng, filter_shape.iter().product());
            let mut want = vec![0u8; out_len];
            depthwise_conv2d_u8(&p, &q, &x, g.in_shape, &w, filter_shape, b.as_deref(), &mut want, out_shape);
            for &isa in &available_levels() {
                let plan = Qs8DepthwisePlan::new(isa, &p, &q, g.in_shape, &w, filter_shape, out_shape);
                assert!(plan.supported());
                let ctx = format!("u8 case {i} {isa:?} {:?} {filter_shape:?} {p:?}", g.in_shape);
                check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, s| plan.run_rows(&x, b.as_deref(), o, r0, s));
            }
        }
    }
}

/// The 16-channel AVX2 path: channel counts around multiples of 16,
/// 3x3 / 5x5 / odd tap counts, strides 1 and 2, SAME padding, dilation,
/// extreme zero points and weights, with and without clamps.
#[test]
fn depthwise_fast_path_matches_reference_exactly() {
    let mut rng = Rng::new(0xd516);
    // Runs on the AVX-512 kernels in the product form of the requantisation.
    let mut product_runs = 0;
    // Runs on a padded copy of the input (stride 1 with padding).
    let mut padded_runs = 0;
    let mut cols_runs = std::collections::HashSet::new();
    let mut count_product = |plan: &Qs8DepthwisePlan, isa: IsaLevel, b: Option<&[i32]>| {
        let product = plan
            .fast
            .as_ref()
            .is_some_and(|f| !f.product.is_empty() && plan.requant.mode(f.weight_bound, b) == RequantMode::Short);
        product_runs += usize::from(product && isa >= IsaLevel::Avx512);
        padded_runs += usize::from(isa >= IsaLevel::Avx2Fma && plan.fast.as_ref().is_some_and(|f| f.padded.is_some()));
        // Runs of four interior pixels on the column-sharing kernels, by
        // filter width, stride and requantisation form.
        if let Some((fw, s)) = plan.fast.as_ref().and_then(|f| f.taps.cols.as_ref()).map(|c| (c.fw, c.stride)) {
            let interior = (plan.in_shape[2] + 2 * plan.p.pad_left).saturating_sub(fw) / s + 1;
            if isa >= IsaLevel::Avx512Vnni && interior >= 4 && plan.out_shape[2] >= 4 {
                cols_runs.insert((fw, s, product));
            }
        }
    };
    for i in 0..200usize {
        let in_c = rng.pick(&[16, 17, 31, 32, 33, 47, 48, 64, 96]);
        let (kh, kw) = rng.pick(&[(3, 3), (3, 3), (5, 5), (1, 1), (1, 3), (3, 2), (2, 2)]);
        let s = rng.range(1, 3);
        let d = if i % 4 == 3 { 2 } else { 1 };
        let padding = if i % 3 == 0 { Padding::Valid } else { Padding::Same };
        // Rows wide enough for runs of four interior pixels at stride 2
        // with a 5-wide filter (the column-sharing kernels) in some cases.
        let (in_h, in_w) = (rng.range(1, 10), rng.range(1, if i % 3 == 0 { 10 } else { 24 }));
        let batches = rng.range(1, 3);
        let pw = Padding2d::compute(padding, in_h, in_w, kh, kw, s, s, d, d);
        let dm = if i % 10 == 9 { 2 } else { 1 };
        let p = DepthwiseParams {
            stride_h: s,
            stride_w: s,
            dilation_h: d,
            dilation_w: d,
            pad_top: pw.padding.top,
            pad_left: pw.padding.left,
            depth_multiplier: dm,
            clamp: ClampF32::NONE,
        };
        let in_shape = [batches, in_h, in_w, in_c];
        let out_c = in_c * dm;
        let filter_shape = [1, kh, kw, out_c];
        let out_shape = [batches, pw.out_h, pw.out_w, out_c];
        let out_len: usize = out_shape.iter().product();
        let rows = out_len / out_c;
        let b = if i.is_multiple_of(3) { None } else { Some(bias_for_case(&mut rng, out_c, i)) };
        let extreme = i % 5 == 0;
        if i % 2 == 0 {
            let mut q = q_i8(&mut rng, out_c);
            if i % 8 == 4 {
                // Raw multipliers and shifts: left shifts, i32::MIN.
                let n = q.output_multiplier.len();
                q.output_multiplier = (0..n)
                    .map(|_| {
                        let r = rng.next_u64() as i32;
                        rng.pick(&[i32::MIN, i32::MAX, 1 << 30, r])
                    })
                    .collect();
                q.output_shift = (0..n).map(|_| rng.range(0, 62) as i32 - 31).collect();
            }
            let x: Vec<i8> = if extreme {
                (0..in_shape.iter().product()).map(|_| rng.pick(&[-128i8, 127])).collect()
            } else {
                i8s(&mut rng, in_shape.iter().product())
            };
            let w: Vec<i8> = if extreme {
                (0..filter_shape.iter().product()).map(|_| rng.pick(&[-128i8, 127])).collect()
            } else {
                i8s(&mut rng, filter_shape.iter().product())
            };
            let mut want = vec![0i8; out_len];
            depthwise_conv2d_i8(&p, &q, &x, in_shape, &w, filter_shape, b.as_deref(), &mut want, out_shape);
            for &isa in &available_levels() {
                let plan = Qs8DepthwisePlan::new(isa, &p, &q, in_shape, &w, filter_shape, out_shape);
                assert!(plan.supported());
                assert_eq!(plan.fast.is_some(), dm == 1 && plan.requant.vector_ok, "case {i}");
                count_product(&plan, isa, b.as_deref());
                let ctx = format!("i8 case {i} {isa:?} {in_shape:?} {filter_shape:?} {p:?}");
                check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, sc| plan.run_rows(&x, b.as_deref(), o, r0, sc));
            }
        } else {
            let q = q_u8(&mut rng);
            let x: Vec<u8> = if extreme {
                (0..in_shape.iter().product()).map(|_| rng.pick(&[0u8, 255])).collect()
            } else {
                u8s(&mut rng, in_shape.iter().product())
            };
            let w = u8s(&mut rng, filter_shape.iter().product());
            let mut want = vec![0u8; out_len];
            depthwise_conv2d_u8(&p, &q, &x, in_shape, &w, filter_shape, b.as_deref(), &mut want, out_shape);
            for &isa in &available_levels() {
                let plan = Qs8DepthwisePlan::new(isa, &p, &q, in_shape, &w, filter_shape, out_shape);
                assert!(plan.supported());
                count_product(&plan, isa, b.as_deref());
                let ctx = format!("u8 case {i} {isa:?} {in_shape:?} {filter_shape:?} {p:?}");
                check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, sc| plan.run_rows(&x, b.as_deref(), o, r0, sc));
            }
        }
    }
    if crate::optimized::isa::cpu_level() >= IsaLevel::Avx512 {
        assert!(product_runs > 40, "only {product_runs} runs in the product form");
    }
    // Counted once per level from AVX2 up: a machine with AVX2 alone runs
    // each case once (24 padded runs on an AVX2-only EPYC; `> 40` held only
    // where the AVX-512 levels ran them too).
    let wide_levels = available_levels().iter().filter(|&&l| l >= IsaLevel::Avx2Fma).count();
    if wide_levels > 0 {
        assert!(padded_runs >= 15 * wide_levels, "only {padded_runs} runs on a padded copy over {wide_levels} levels");
    }
    if crate::optimized::isa::cpu_level() >= IsaLevel::Avx512Vnni {
        assert_eq!(cols_runs.len(), 8, "column-sharing kernels run: {cols_runs:?}");
    }
}

/// Clamps wider than the output type (the cast keeps the low bits) and
/// zero points outside the type keep the portable path.
#[test]
fn depthwise_fast_path_declines_wide_clamps() {
    let mut rng = Rng::new(0xd517);
    let p = DepthwiseParams {
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 1,
        pad_left: 1,
        depth_multiplier: 1,
        clamp: ClampF32::NONE,
    };
    let in_shape = [1, 5, 5, 32];
    let filter_shape = [1, 3, 3, 32];
    let out_shape = [1, 5, 5, 32];
    let x = i8s(&mut rng, 800);
    let w = i8s(&mut rng, 288);
    for case in 0..2 {
        let mut q = q_i8(&mut rng, 32);
        if case == 0 {
            (q.act_min, q.act_max) = (i32::MIN, i32::MAX);
        } else {
            q.input_offset = 1000;
        }
        let mut want = vec![0i8; 800];
        depthwise_conv2d_i8(&p, &q, &x, in_shape, &w, filter_shape, None, &mut want, out_shape);
        for &isa in &available_levels() {
            let plan = Qs8DepthwisePlan::new(isa, &p, &q, in_shape, &w, filter_shape, out_shape);
            assert!(plan.fast.is_none());
            let mut got = vec![0i8; 800];
            plan.run(&x, None, &mut got, &mut Qs8Scratch::new());
            assert_eq!(got, want, "case {case} {isa:?}");
        }
    }
}

/// The first row's units computed in column ranges cut at random
/// multiples of 16, with a reused scratch.
fn check_cols<T: Q8 + PartialEq + std::fmt::Debug>(
    want: &[T],
    rng: &mut Rng,
    ctx: &str,
    run: impl Fn(&mut [T], usize, &mut Qs8Scratch),
) {
    let mut got = vec![T::from_i32(0); want.len()];
    let mut scratch = Qs8Scratch::new();
    for cols in panel_ranges(want.len(), rng) {
        let c0 = cols.start;
        run(&mut got[cols], c0, &mut scratch);
    }
    assert_eq!(got, want, "{ctx}: column ranges");
}

#[test]
fn fully_connected_matches_reference_exactly() {
    let mut rng = Rng::new(0xfc);
    // Plans that run on the VNNI weights.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut vnni_plans = 0;
    for i in 0..120usize {
        let (batches, depth, units) = (rng.range(1, 9), rng.range(1, 300), rng.range(1, 50));
        let b = if i.is_multiple_of(3) { None } else { Some(bias(&mut rng, units)) };
        if i % 2 == 0 {
            // Per-channel (symmetric) or per-tensor with a filter zero point.
            let q = if i % 4 == 0 {
                q_i8(&mut rng, units)
            } else {
                let (izp, fzp, ozp) = (zp(&mut rng, -128, 127), zp(&mut rng, -128, 127), zp(&mut rng, -128, 127));
                let (si, sw, so) = (scale(&mut rng), scale(&mut rng) * 0.02, scale(&mut rng) * 2.0);
                ConvQuantParams::per_tensor(si, izp, sw, fzp, so, ozp, act(&mut rng), -128, 127).unwrap()
            };
            let x = i8s(&mut rng, batches * depth);
            let w = i8s(&mut rng, units * depth);
            let mut want = vec![0i8; batches * units];
            fully_connected_i8(&q, &x, &w, b.as_deref(), &mut want, batches, depth, units);
            for &isa in &available_levels() {
                let plan = Qs8FullyConnectedPlan::new(isa, &q, &w, units, depth);
                assert!(plan.supported());
                #[cfg(target_arch = "x86_64")]
                {
                    vnni_plans += usize::from(plan.vnni_for::<i8>().is_some());
                }
                let ctx = format!("i8 case {i} {isa:?} b{batches} d{depth} u{units}");
                check_rows(batches, units, &want, &mut rng, &ctx, |o, r0, s| plan.run_rows(&x, b.as_deref(), o, r0, s));
                check_cols(&want[..units], &mut rng, &ctx, |o, c0, s| {
                    plan.run_cols(&x[..depth], b.as_deref(), o, c0, s)
                });
            }
        } else {
            let q = q_u8(&mut rng);
            let x = u8s(&mut rng, batches * depth);
            let w = u8s(&mut rng, units * depth);
            let mut want = vec![0u8; batches * units];
            fully_connected_u8(&q, &x, &w, b.as_deref(), &mut want, batches, depth, units);
            for &isa in &available_levels() {
                let plan = Qs8FullyConnectedPlan::new(isa, &q, &w, units, depth);
                assert!(plan.supported());
                let ctx = format!("u8 case {i} {isa:?} b{batches} d{depth} u{units}");
                check_rows(batches, units, &want, &mut rng, &ctx, |o, r0, s| plan.run_rows(&x, b.as_deref(), o, r0, s));
                check_cols(&want[..units], &mut rng, &ctx, |o, c0, s| {
                    plan.run_cols(&x[..depth], b.as_deref(), o, c0, s)
                });
            }
        }
    }
    if crate::optimized::isa::cpu_level() >= IsaLevel::Avx512Vnni {
        assert!(vnni_plans >= 20, "only {vnni_plans} FC plans on VNNI");
    }
    let _ = vnni_plans;
}
