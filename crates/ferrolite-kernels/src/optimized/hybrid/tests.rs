//! `hybrid` against the reference hybrid kernels at every ISA level the CPU
//! has.

use super::*;
use crate::optimized::isa::available_levels;
use crate::optimized::testutil::{panel_ranges, ConvGeom, ConvGeomLimits, Rng};
use crate::reference::hybrid::{
    asymmetric_quantize_floats, conv2d_hybrid, conv2d_hybrid_per_channel, depthwise_conv2d_hybrid_per_channel,
    fully_connected_hybrid, symmetric_quantize_floats, HybridScratch,
};

fn i8s(rng: &mut Rng, n: usize) -> Vec<i8> {
    // Mostly the converter's -127..=127, sometimes -128 too.
    (0..n).map(|_| if rng.range(0, 50) == 0 { -128 } else { (rng.range(0, 255) as i32 - 127) as i8 }).collect()
}
fn scales(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| 0.0005 + 0.02 * (rng.f32() + 1.0)).collect()
}
fn clamp(rng: &mut Rng) -> ClampF32 {
    rng.pick(&[ClampF32::NONE, ClampF32::RELU, ClampF32::RELU6, ClampF32::RELU_N1_TO_1])
}

/// Float activations of several shapes: symmetric around 0, all
/// non-negative (post-ReLU: zero point -128), all negative, constant,
/// zero, with wide magnitudes, and with exact quantisation ties.
fn floats(rng: &mut Rng, n: usize) -> Vec<f32> {
    let kind = rng.range(0, 9);
    let mut v: Vec<f32> = (0..n)
        .map(|_| {
            let x = rng.f32();
            match kind {
                0 | 1 => 3.0 * x,
                2 => 6.0 * (x + 1.0) * 0.5,
                3 => -(x.abs()) - 0.1,
                4 => 0.75,
                5 => 0.0,
                6 => x * 10f32.powi(rng.range(0, 12) as i32 - 6),
                7 => {
                    // Halves: with 127 in the row, `v * 127 / 127` ties.
                    (rng.range(0, 509) as f32 - 254.0) * 0.5
                }
                _ => {
                    if rng.range(0, 3) == 0 {
                        0.0
                    } else {
                        x
                    }
                }
            }
        })
        .collect();
    if kind == 7 && n > 0 {
        let i = rng.range(0, n);
        v[i] = 127.0;
    }
    if kind == 5 && n > 0 && rng.range(0, 2) == 0 {
        let i = rng.range(0, n);
        v[i] = -0.0;
    }
    v
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The reference's quantised row, scale and zero point.
fn reference_quantisation(v: &[f32], asymmetric: bool) -> (Vec<i8>, f32, i32) {
    let mut want = vec![0i8; v.len()];
    let (ws, wo) = if asymmetric {
        asymmetric_quantize_floats(v, &mut want)
    } else {
        let (_, _, s) = symmetric_quantize_floats(v, &mut want);
        (s, 0)
    };
    (want, ws, wo)
}

fn check_quantised(q: &HybridInput, want: &[i8], ws: f32, wo: i32, ctx: &str) {
    assert_eq!(q.row_i8(0), want, "{ctx}");
    assert_eq!(q.scales[0].to_bits(), ws.to_bits(), "{ctx}");
    assert_eq!(q.offsets[0], wo, "{ctx}");
}

#[test]
fn split_quantisation_matches_the_reference() {
    // Rows long enough to be split into tasks, run on real threads;
    // with NaNs, infinities and extremes in some chunk but not others.
    let par = |tasks: usize, task: &(dyn Fn(usize) + Sync)| {
        std::thread::scope(|sc| {
            for i in (0..tasks).rev() {
                sc.spawn(move || task(i));
            }
        })
    };
    let mut rng = Rng::new(0x5b1);
    for case in 0..8usize {
        let n = 2 * QUANTIZE_CHUNK + rng.range(0, 3 * QUANTIZE_CHUNK);
        let mut v = floats(&mut rng, n);
        match case % 4 {
            1 => v[n - 1] = f32::NAN,
            2 => v[QUANTIZE_CHUNK + 3] = f32::NEG_INFINITY,
            3 => v[rng.range(0, n)] = 1.0e6,
            _ => {}
        }
        for asymmetric in [false, true] {
            let (want, ws, wo) = reference_quantisation(&v, asymmetric);
            for (&isa, float) in available_levels().iter().flat_map(|l| [(l, false), (l, true)]) {
                let mut q = HybridInput::new();
                q.quantize_as(isa, &v, 1, n, n + 1, asymmetric, float, &par);
                check_quantised(&q, &want, ws, wo, &format!("case {case} asym {asymmetric} {isa:?} f32 {float}"));
            }
        }
    }
}

#[test]
fn quantize_matches_reference() {
    let mut rng = Rng::new(0x4b1d);
    for case in 0..600usize {
        let n = rng.range(0, 90);
        let mut v = floats(&mut rng, n);
        if case % 5 == 4 && n > 1 {
            // One ulp either side of the halves (with 127 in the row the
            // symmetric products are the values themselves).
            for x in v.iter_mut() {
                let h = rng.range(0, 12) as f32 - 6.0 + 0.5;
                let b = h.to_bits() as i32 + rng.range(0, 3) as i32 - 1;
                *x = f32::from_bits(b as u32);
            }
            v[0] = 127.0;
        }
        // Specials: NaN, infinities, signed zeros, denormals.
        if case % 7 == 0 && n > 0 {
            let i = rng.range(0, n);
            v[i] = rng.pick(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 1e-40, -1e-42]);
        }
        for asymmetric in [false, true] {
            let (want, ws, wo) = reference_quantisation(&v, asymmetric);
            for (&isa, float) in available_levels().iter().flat_map(|l| [(l, false), (l, true)]) {
                // A reused buffer: stale values must not survive.
                let mut q = HybridInput::new();
                q.quantize_as(isa, &[7.0; 100], 1, 100, 100, true, float, &serial);
                q.quantize_as(isa, &v, 1, n, n + (case % 3), asymmetric, float, &serial);
                let ctx = format!("case {case} asym {asymmetric} {isa:?} f32 {float} {v:?}");
                check_quantised(&q, &want, ws, wo, &ctx);
                assert_eq!(q.all_zero, v.iter().all(|&x| x == 0.0), "{ctx}");
                if float {
                    assert!(q.xf[n..].iter().all(|&x| x == 0.0), "{ctx}: row padding");
                } else {
                    assert!(q.x[n..].iter().all(|&x| x == 0), "{ctx}: row padding");
                }
            }
        }
    }
}

fn geom(rng: &mut Rng, i: usize, in_c: usize) -> ConvGeom {
    let lim =
        ConvGeomLimits { stride_h: 4, stride_w: 3, dilation_h: 3, dilation_w: 4, batches: 4, depth_multiplier: 4 };
    ConvGeom::random(rng, i, in_c, &lim, clamp)
}

/// Images of one batch each drawn on their own (zero images, ReLU
/// images and signed ones side by side).
fn images(rng: &mut Rng, in_shape: [usize; 4]) -> Vec<f32> {
    let image: usize = in_shape[1..].iter().product();
    (0..in_shape[0]).flat_map(|_| floats(rng, image)).collect()
}

/// Run `run` whole and in uneven row chunks; both must equal `want` bit for
/// bit. Where the kernel `observes` what it writes, the ranges it records
/// (merged over the chunks) must be `want`'s min and max.
fn check_rows(
    rows: usize,
    row_len: usize,
    want: &[f32],
    rng: &mut Rng,
    ctx: &str,
    observes: bool,
    mut run: impl FnMut(&mut [f32], usize, &mut Qs8Scratch, &mut ObservedRange),
) {
    let mut scratch = Qs8Scratch::new();
    let mut got = vec![f32::NAN; want.len()];
    let mut range = ObservedRange::default();
    run(&mut got, 0, &mut scratch, &mut range);
    assert_eq!(bits(&got), bits(want), "{ctx}\n got {got:?}\nwant {want:?}");
    let expected = if observes { minmax_element(want) } else { None };
    assert_eq!(range.get(), expected, "{ctx}: observed range");
    if rows > 1 {
        let chunk = rng.range(1, rows);
        let mut got = vec![f32::NAN; want.len()];
        let mut merged = ObservedRange::default();
        for (ci, part) in got.chunks_mut(chunk * row_len).enumerate() {
            let mut range = ObservedRange::default();
            run(part, ci * chunk, &mut scratch, &mut range);
            merged.merge(range);
        }
        assert_eq!(bits(&got), bits(want), "{ctx} chunk {chunk}");
        assert_eq!(merged.get(), expected, "{ctx} chunk {chunk}: observed range");
    }
}

/// The min/max of `x` as a producer would have recorded it.
fn observed(isa: IsaLevel, x: &[f32]) -> Option<(f32, f32)> {
    let mut range = ObservedRange::default();
    range.observe(isa, x);
    range.get()
}

/// Parameters found with a known range equal those of the scan.
fn same_params(a: &HybridInput, b: &HybridInput, ctx: &str) {
    let bits32 = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits32(&a.scales), bits32(&b.scales), "{ctx}: scales with a known range");
    assert_eq!(a.offsets, b.offsets, "{ctx}: offsets with a known range");
}

#[test]
fn conv_matches_reference_exactly() {
    let mut rng = Rng::new(0xc0de);
    let mut ref_scratch = HybridScratch::new();
    let mut banded = 0;
    for i in 0..240usize {
        let groups = if i % 5 == 1 { rng.range(2, 4) } else { 1 };
        // Even and odd channel counts (even pointwise: the direct path).
        let f_in = if i % 8 == 0 { 2 * rng.range(1, 20) } else { rng.range(1, 24) };
        let g = geom(&mut rng, i, f_in * groups);
        let out_c = groups * rng.range(1, 40 / groups);
        let filter_shape = [out_c, g.kh, g.kw, f_in];
        let out_shape = [g.in_shape[0], g.out_hw.0, g.out_hw.1, out_c];
        let out_len: usize = out_shape.iter().product();
        let rows = out_len / out_c;
        let x = images(&mut rng, g.in_shape);
        let w = i8s(&mut rng, filter_shape.iter().product());
        let b = if i.is_multiple_of(3) { None } else { Some((0..out_c).map(|_| rng.f32()).collect::<Vec<_>>()) };
        // Per-tensor (one scale), or per-channel with 1 or out_c scales.
        let per_channel = groups > 1 || i % 2 == 1;
        let sc = scales(&mut rng, if per_channel && i % 7 != 3 { out_c } else { 1 });
        let mut want = vec![0.0f32; out_len];
        if per_channel {
            conv2d_hybrid_per_channel(
                &g.p,
                &x,
                g.in_shape,
                &w,
                filter_shape,
                &sc,
                b.as_deref(),
                &mut want,
                out_shape,
                &mut ref_scratch,
            );
        } else {
            conv2d_hybrid(
                &g.p,
                &x,
                g.in_shape,
                &w,
                filter_shape,
                sc[0],
                b.as_deref(),
                &mut want,
                out_shape,
                &mut ref_scratch,
            );
        }
        for &isa in &available_levels() {
            let plan = HybridConvPlan::new(isa, &g.p, g.in_shape, &w, filter_shape, &sc, per_channel, out_shape);
            assert!(plan.supported());
            let mut q = HybridInput::new();
            plan.quantize(&x, &mut q);
            let ctx = format!(
                "case {i} {isa:?} pc {per_channel} direct {} {:?} {filter_shape:?} {:?}",
                plan.direct, g.in_shape, g.p
            );
            check_rows(rows, out_c, &want, &mut rng, &ctx, true, |o, r0, s, range| {
                plan.run_rows(&q, b.as_deref(), o, r0, s, Some(range))
            });
            let mut got = vec![0.0f32; out_len];
            plan.run(&x, b.as_deref(), &mut got, &mut q, &mut Qs8Scratch::new());
            assert_eq!(bits(&got), bits(&want), "{ctx} run");
            if plan.banded() {
                let mut qp = HybridInput::new();
                plan.quantize_params_par(&x, &mut qp, None, &serial);
                let ctx = format!("{ctx} banded");
                if g.in_shape[0] == 1 {
                    let mut known = HybridInput::new();
                    plan.quantize_params_par(&x, &mut known, observed(isa, &x), &serial);
                    same_params(&known, &qp, &ctx);
                }
                check_rows(rows, out_c, &want, &mut rng, &ctx, true, |o, r0, s, range| {
                    plan.run_rows_quantizing(&x, &qp, b.as_deref(), o, r0, s, Some(range))
                });
                banded += 1;
            }
        }
    }
    assert!(banded > 20, "only {banded} banded cases");
}

#[test]
fn depthwise_matches_reference_exactly() {
    let mut rng = Rng::new(0xd3);
    let mut ref_scratch = HybridScratch::new();
    let mut banded = 0;
    for i in 0..240usize {
        let in_c = rng.range(1, 40);
        let g = geom(&mut rng, i, in_c);
        let dm = if i % 3 == 0 { 1 } else { g.dm };
        let p = DepthwiseParams {
            stride_h: g.p.stride_h,
            stride_w: g.p.stride_w,
            dilation_h: g.p.dilation_h,
            dilation_w: g.p.dilation_w,
            pad_top: g.p.pad_top,
            pad_left: g.p.pad_left,
            depth_multiplier: dm,
            clamp: g.p.clamp,
        };
        let out_c = in_c * dm;
        let filter_shape = [1, g.kh, g.kw, out_c];
        let out_shape = [g.in_shape[0], g.out_hw.0, g.out_hw.1, out_c];
        let out_len: usize = out_shape.iter().product();
        let rows = out_len / out_c;
        let x = images(&mut rng, g.in_shape);
        let w = i8s(&mut rng, filter_shape.iter().product());
        let b = if i.is_multiple_of(3) { None } else { Some((0..out_c).map(|_| rng.f32()).collect::<Vec<_>>()) };
        let sc = scales(&mut rng, if i % 5 == 2 { 1 } else { out_c });
        let mut want = vec![0.0f32; out_len];
        depthwise_conv2d_hybrid_per_channel(
            &p,
            &x,
            g.in_shape,
            &w,
            filter_shape,
            &sc,
            b.as_deref(),
            &mut want,
            out_shape,
            &mut ref_scratch,
        );
        for &isa in &available_levels() {
            // The f32 sums, and (every third case) the i32 ones.
            let limit = if i % 3 == 2 { 0 } else { FLOAT_EXACT_TAPS };
            let plan =
                HybridDepthwisePlan::with_float_limit(isa, &p, g.in_shape, &w, filter_shape, &sc, out_shape, limit);
            assert!(plan.supported());
            assert_eq!(plan.float, limit > 0);
            let mut q = HybridInput::new();
            plan.quantize(&x, &mut q);
            let ctx = format!("case {i} {isa:?} {:?} {filter_shape:?} {p:?}", g.in_shape);
            check_rows(rows, out_c, &want, &mut rng, &ctx, false, |o, r0, s, _| {
                plan.run_rows(&q, b.as_deref(), o, r0, s)
            });
            let mut got = vec![0.0f32; out_len];
            plan.run(&x, b.as_deref(), &mut got, &mut q, &mut Qs8Scratch::new());
            assert_eq!(bits(&got), bits(&want), "{ctx} run");
            if plan.banded() {
                // Random runs of image rows through one band buffer (as
                // a worker thread keeps it), bands of a few rows.
                let mut qp = HybridInput::new();
                plan.quantize_params_par(&x, &mut qp, None, &serial);
                if g.in_shape[0] == 1 {
                    let mut known = HybridInput::new();
                    plan.quantize_params_par(&x, &mut known, observed(isa, &x), &serial);
                    same_params(&known, &qp, &ctx);
                }
                let (row, n) = (plan.image_row_len(), plan.image_rows());
                let mut got = vec![f32::NAN; out_len];
                let mut band = Vec::new();
                let mut range = ObservedRange::default();
                let mut r = 0;
                while r < n {
                    let k = rng.range(1, 5).min(n - r);
                    let out = &mut got[r * row..(r + k) * row];
                    plan.run_image_rows(&x, &qp, b.as_deref(), out, r, &mut band, Some(&mut range));
                    r += k;
                }
                assert_eq!(bits(&got), bits(&want), "{ctx} banded");
                assert_eq!(range.get(), minmax_element(&want), "{ctx} banded: observed range");
                banded += 1;
            }
        }
    }
    assert!(banded > 100, "only {banded} banded cases");
}

#[test]
fn fully_connected_matches_reference_exactly() {
    let mut rng = Rng::new(0xfc1);
    let mut ref_scratch = HybridScratch::new();
    for i in 0..200usize {
        let (batches, depth, units) = (rng.range(1, 9), rng.range(1, 300), rng.range(1, 50));
        let asymmetric = i % 2 == 1;
        let cl = clamp(&mut rng);
        let x: Vec<f32> = if i % 11 == 0 {
            vec![if i % 22 == 0 { -0.0 } else { 0.0 }; batches * depth]
        } else {
            (0..batches).flat_map(|_| floats(&mut rng, depth)).collect()
        };
        let w = i8s(&mut rng, units * depth);
        let sc = scales(&mut rng, if i % 4 >= 2 { units } else { 1 });
        let b = if i.is_multiple_of(3) { None } else { Some((0..units).map(|_| rng.f32()).collect::<Vec<_>>()) };
        let mut want = vec![0.0f32; batches * units];
        fully_connected_hybrid(
            &x,
            &w,
            &sc,
            b.as_deref(),
            &mut want,
            batches,
            depth,
            units,
            asymmetric,
            cl,
            &mut ref_scratch,
        );
        for &isa in &available_levels() {
            let plan = HybridFullyConnectedPlan::new(isa, &w, &sc, units, depth, asymmetric, cl);
            assert!(plan.supported());
            let mut q = HybridInput::new();
            plan.quantize(&x, batches, &mut q);
            let ctx = format!("case {i} {isa:?} b{batches} d{depth} u{units} asym {asymmetric}");
            check_rows(batches, units, &want, &mut rng, &ctx, false, |o, r0, s, _| {
                plan.run_rows(&q, b.as_deref(), o, r0, s)
            });
            if batches == 1 {
                // The first row's units in ranges cut at multiples of 16.
                let (mut got, mut s) = (vec![0.0f32; units], Qs8Scratch::new());
                for cols in panel_ranges(units, &mut rng) {
                    let c0 = cols.start;
                    plan.run_cols(&q, b.as_deref(), &mut got[cols], c0, &mut s);
                }
                assert_eq!(bits(&got), bits(&want[..units]), "{ctx} columns");
            }
            let mut got = vec![0.0f32; batches * units];
            plan.run(&x, b.as_deref(), &mut got, batches, &mut q, &mut Qs8Scratch::new());
            assert_eq!(bits(&got), bits(&want), "{ctx} run");
        }
    }
}

#[test]
fn unsupported_shapes_are_reported() {
    let p = Conv2dParams {
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 0,
        pad_left: 0,
        clamp: ClampF32::NONE,
    };
    // 3 input channels over a filter of 2: not a whole number of groups.
    let plan =
        HybridConvPlan::new(IsaLevel::Scalar, &p, [1, 2, 2, 3], &[0; 8], [2, 1, 1, 2], &[1.0], false, [1, 2, 2, 2]);
    assert!(!plan.supported());
    // Too few per-channel scales.
    let plan = HybridFullyConnectedPlan::new(IsaLevel::Scalar, &[0; 12], &[1.0, 2.0], 3, 4, false, ClampF32::NONE);
    assert!(!plan.supported());
}

#[test]
fn observed_range_is_the_min_and_max_or_nothing_after_a_nan() {
    let mut rng = Rng::new(0x0b5);
    for case in 0..400usize {
        let n = rng.range(0, 70);
        let mut v: Vec<f32> = (0..n).map(|_| rng.f32() * 100.0).collect();
        if case % 4 == 1 && n > 0 {
            let at = rng.range(0, n);
            v[at] = f32::NAN;
        }
        let want = if v.iter().any(|x| x.is_nan()) { None } else { minmax_element(&v) };
        for &isa in &available_levels() {
            // Whole, and split in two parts merged.
            let mut whole = ObservedRange::default();
            whole.observe(isa, &v);
            assert_eq!(whole.get(), want, "case {case} {isa:?} n {n}");
            let cut = rng.range(0, n + 1);
            let (mut a, mut b) = (ObservedRange::default(), ObservedRange::default());
            a.observe(isa, &v[..cut]);
            b.observe(isa, &v[cut..]);
            a.merge(b);
            assert_eq!(a.get(), want, "case {case} {isa:?} n {n} cut {cut}");
        }
    }
}

#[test]
fn bounded_observation_stops_only_once_both_bounds_are_seen() {
    let isa = available_levels()[0];
    let mut r = ObservedRange::default();
    r.observe_bounded(isa, &[0.0, 3.0], Some((0.0, 6.0)));
    assert_eq!(r.get(), Some((0.0, 3.0)));
    // Not final yet: 6 is still looked for.
    r.observe_bounded(isa, &[6.0, 1.0], Some((0.0, 6.0)));
    assert_eq!(r.get(), Some((0.0, 6.0)));
    // Final: the rest is not read (a NaN here would be the caller's lie).
    r.observe_bounded(isa, &[f32::NAN], Some((0.0, 6.0)));
    assert_eq!(r.get(), Some((0.0, 6.0)));
    // Unbounded, the same NaN spoils it.
    r.observe_bounded(isa, &[f32::NAN], None);
    assert_eq!(r.get(), None);
}

#[test]
fn bounds_are_given_only_where_no_output_can_be_nan() {
    let relu6 = ClampF32::RELU6;
    assert_eq!(nan_free_bounds(relu6, 0.02, 0.5, Some(&[1.0, -2.0])), Some((0.0, 6.0)));
    assert_eq!(nan_free_bounds(ClampF32::NONE, 0.02, 0.5, None), Some((f32::NEG_INFINITY, f32::INFINITY)));
    // A NaN or infinite scale, input scale or bias; products near overflow.
    assert_eq!(nan_free_bounds(relu6, f32::NAN, 0.5, None), None);
    assert_eq!(nan_free_bounds(relu6, max_abs(&[0.1, f32::NAN]), 0.5, None), None);
    assert_eq!(nan_free_bounds(relu6, 0.02, f32::INFINITY, None), None);
    assert_eq!(nan_free_bounds(relu6, 0.02, 0.5, Some(&[1.0, f32::NAN])), None);
    assert_eq!(nan_free_bounds(relu6, 0.02, 0.5, Some(&[f32::NEG_INFINITY])), None);
    assert_eq!(nan_free_bounds(relu6, 1e30, 1e-30, None), None);
    assert_eq!(nan_free_bounds(relu6, 1e20, 1e20, None), None);
}
