//! User-registered custom operators.

mod support;

use ferrolite::schema as fb;
use ferrolite::{
    EvalContext, Interpreter, InterpreterOptions, Model, OpError, OpResolver, Operator, PrepareContext, PreparedOp,
};
use ferrolite_kernels::activation::ClampF32;
use ferrolite_kernels::reference::conv::{transpose_conv2d_f32, TransposeConvParams};

/// A chain of custom ops over [2, 3] float tensors: op `i` (name, one byte
/// of custom options) maps tensor `i` to tensor `i + 1`; the first tensor
/// is the input, the last the output.
fn custom_chain_model(ops: &[(&str, u8)]) -> Vec<u8> {
    let tensor = |i: usize| fb::Tensor {
        shape: Some(vec![2, 3]),
        type_: fb::TensorType::Float32,
        buffer: 0,
        name: Some(format!("t{i}")),
        ..Default::default()
    };
    let model = fb::Model {
        version: 3,
        operator_codes: Some(
            ops.iter()
                .map(|(name, _)| fb::OperatorCode {
                    deprecated_builtin_code: 32,
                    builtin_code: fb::BuiltinOperator::Custom,
                    custom_code: Some((*name).into()),
                    version: 1,
                })
                .collect(),
        ),
        subgraphs: Some(vec![fb::SubGraph {
            tensors: Some((0..=ops.len()).map(tensor).collect()),
            inputs: Some(vec![0]),
            outputs: Some(vec![ops.len() as i32]),
            operators: Some(
                ops.iter()
                    .enumerate()
                    .map(|(i, &(_, option))| fb::Operator {
                        opcode_index: i as u32,
                        inputs: Some(vec![i as i32]),
                        outputs: Some(vec![i as i32 + 1]),
                        custom_options: Some(vec![option]),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }]),
        buffers: Some(vec![fb::Buffer::default()]),
        ..Default::default()
    };
    fb::finish_model(&mut planus::Builder::new(), &model)
}

/// A model with one custom op `name` mapping a [2, 3] float input to an
/// output of the same shape (custom options: the byte 3).
fn one_custom_op_model(name: &str) -> Vec<u8> {
    custom_chain_model(&[(name, 3)])
}

/// `y = k * x`, with k read from the op's custom options.
struct Scale;

impl Operator for Scale {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        let k = *ctx.custom_options.first().ok_or(OpError::Options("missing factor".into()))? as f32;
        let shape = ctx.input(0)?.shape().to_vec();
        ctx.set_output_shape(0, shape)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?.as_slice::<f32>()?;
            for (y, &v) in ctx.output(0)?.as_slice_mut::<f32>()?.iter_mut().zip(x) {
                *y = k * v;
            }
            Ok(())
        }))
    }
}

#[test]
fn registered_custom_op_runs_with_its_options() {
    let bytes = one_custom_op_model("Scale");
    let model = Model::from_bytes(&bytes).unwrap();
    let mut resolver = OpResolver::with_builtins();
    resolver.add_custom("Scale", Scale);
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    it.set_input(0, &[1.0f32, -2.0, 0.5, 4.0, 0.0, 10.0]).unwrap();
    it.invoke().unwrap();
    assert_eq!(it.output(0).unwrap().as_slice::<f32>().unwrap(), &[3.0, -6.0, 1.5, 12.0, 0.0, 30.0]);
}

#[test]
fn unregistered_custom_op_is_named_at_allocate() {
    let bytes = one_custom_op_model("Mystery");
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    let err = it.allocate_tensors().unwrap_err();
    match &err {
        ferrolite::Error::UnsupportedOp { node, op, version, .. } => {
            assert_eq!((*node, op.as_str(), *version), (0, "Mystery", 1));
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("Mystery"), "{err}");
}

/// MediaPipe's `Convolution2DTransposeBias`: a transposed convolution with a
/// bias, options as three int32s (padding, stride width, stride height).
struct Convolution2DTransposeBias;

impl Operator for Convolution2DTransposeBias {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(3, 3)?;
        let o = ctx.custom_options;
        if o.len() < 12 {
            return Err(OpError::Options(format!("{} option bytes, expected 12", o.len())));
        }
        let int = |i: usize| i32::from_le_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]]);
        let same = int(0) == 1;
        let (stride_w, stride_h) = (int(1) as usize, int(2) as usize);
        let in_shape: [usize; 4] = ctx.input(0)?.shape().try_into().map_err(|_| OpError::Shape("input".into()))?;
        let f_shape: [usize; 4] = ctx.input(1)?.shape().try_into().map_err(|_| OpError::Shape("filter".into()))?;
        // MediaPipe's sizes: SAME pads k - 1 - (in - 1) % s in all (at
        // least 0), half of it before; the output is s (in - 1) + k less it.
        let side = |n: usize, k: usize, s: usize| {
            let pad = if same { (k as i64 - 1 - ((n as i64 - 1) % s as i64)).max(0) as usize } else { 0 };
            (pad, s * (n - 1) + k - pad)
        };
        let ((pad_h, oh), (pad_w, ow)) =
            (side(in_shape[1], f_shape[1], stride_h), side(in_shape[2], f_shape[2], stride_w));
        let out_shape = [in_shape[0], oh, ow, f_shape[0]];
        ctx.set_output_shape(0, out_shape.to_vec())?;
        let p =
            TransposeConvParams { stride_h, stride_w, pad_top: pad_h / 2, pad_left: pad_w / 2, clamp: ClampF32::NONE };
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?.as_slice::<f32>()?;
            let w = ctx.input(1)?.as_slice::<f32>()?;
            let b = ctx.input(2)?.as_slice::<f32>()?;
            let y = ctx.output(0)?.as_slice_mut::<f32>()?;
            transpose_conv2d_f32(&p, x, in_shape, w, f_shape, Some(b), y, out_shape);
            Ok(())
        }))
    }
}

/// The selfie segmenter needs the custom op; with it, the person in the
/// astronaut picture (centre) must score far higher than the top corners.
#[test]
fn selfie_segmentation_with_user_custom_op() {
    let Some(path) = support::fixture("selfie_segmentation.tflite") else {
        eprintln!("skipping: selfie_segmentation.tflite not found");
        return;
    };
    let model = Model::from_file(&path).unwrap();
    let mut resolver = OpResolver::with_builtins();
    resolver.add_custom("Convolution2DTransposeBias", Convolution2DTransposeBias);
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    let shape = it.input(0).unwrap().shape().to_vec();
    assert_eq!(shape.len(), 4);
    let (h, w) = (shape[1], shape[2]);
    // The face detector's 128x128 astronaut input ([-1, 1]), resampled to the
    // segmenter's size by nearest neighbour and mapped to [0, 1].
    let img =
        support::read_npy(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/astronaut_128.npy"));
    let src: Vec<f32> = img.as_f64().iter().map(|&v| ((v + 1.0) / 2.0) as f32).collect();
    let mut x = vec![0.0f32; h * w * 3];
    for yy in 0..h {
        for xx in 0..w {
            let (sy, sx) = (yy * 128 / h, xx * 128 / w);
            for c in 0..3 {
                x[(yy * w + xx) * 3 + c] = src[(sy * 128 + sx) * 3 + c];
            }
        }
    }
    it.set_input(0, &x).unwrap();
    it.invoke().unwrap();
    let out = it.output(0).unwrap();
    let mask = out.as_slice::<f32>().unwrap();
    let (oh, ow) = (out.shape()[1], out.shape()[2]);
    assert!(mask.iter().all(|v| (0.0..=1.0).contains(v)), "mask must be probabilities");
    let mean = |y0: usize, y1: usize, x0: usize, x1: usize| {
        let mut s = 0.0;
        for y in y0..y1 {
            for xx in x0..x1 {
                s += mask[y * ow + xx];
            }
        }
        s / ((y1 - y0) * (x1 - x0)) as f32
    };
    let centre = mean(oh * 2 / 5, oh * 3 / 5, ow * 2 / 5, ow * 3 / 5);
    let corner = mean(0, oh / 8, 0, ow / 8);
    eprintln!("selfie mask: centre {centre:.3}, corner {corner:.3}");
    assert!(centre > 0.5 && corner < 0.5 && centre > corner + 0.3, "centre {centre} corner {corner}");
}

/// `y = x + 1`; records y's range when a reader wants it (option 1),
/// always (option 2), or only at its first invoke (option 3: a later
/// invoke must not hand the stale record to the reader).
struct Produce;

impl Operator for Produce {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        let mode = ctx.custom_options[0];
        ctx.set_output_shape(0, vec![2, 3])?;
        let mut invokes = 0;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            invokes += 1;
            let x = ctx.input(0)?.as_slice::<f32>()?.to_vec();
            let wanted = ctx.output_range_wanted(0);
            let y = ctx.output(0)?.as_slice_mut::<f32>()?;
            for (y, v) in y.iter_mut().zip(&x) {
                *y = v + 1.0;
            }
            let lo = y.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = y.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if (mode == 1 && wanted) || mode == 2 || (mode == 3 && invokes == 1) {
                ctx.set_output_range(0, (lo, hi));
            }
            Ok(())
        }))
    }
}

/// `z = [min, max, 0, ...]` of the recorded range of its input, NaNs where
/// none; asks for the range when its option is 1.
struct Consume;

impl Operator for Consume {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        if ctx.custom_options[0] == 1 {
            ctx.reads_input_range(0);
        }
        ctx.set_output_shape(0, vec![2, 3])?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let range = ctx.input_range(0);
            let z = ctx.output(0)?.as_slice_mut::<f32>()?;
            z.fill(0.0);
            let (lo, hi) = range.unwrap_or((f32::NAN, f32::NAN));
            z[0] = lo;
            z[1] = hi;
            Ok(())
        }))
    }
}

/// The range `Consume` saw at each of `invokes` invokes.
fn run_producer_consumer(produce: u8, consume: u8, x: &[f32], invokes: usize) -> Vec<(f32, f32)> {
    let bytes = custom_chain_model(&[("Produce", produce), ("Consume", consume)]);
    let model = Model::from_bytes(&bytes).unwrap();
    let mut resolver = OpResolver::with_builtins();
    resolver.add_custom("Produce", Produce);
    resolver.add_custom("Consume", Consume);
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    it.set_input(0, x).unwrap();
    (0..invokes)
        .map(|_| {
            it.invoke().unwrap();
            let z = it.output(0).unwrap().as_slice::<f32>().unwrap();
            (z[0], z[1])
        })
        .collect()
}

fn unknown(r: (f32, f32)) -> bool {
    r.0.is_nan() && r.1.is_nan()
}

#[test]
fn a_recorded_range_reaches_the_reader_that_asked_for_it() {
    let x = [1.0f32, -2.0, 0.5, 4.0, 0.0, 10.0];
    // Asked for and recorded: the reader sees y's min and max, each time.
    assert_eq!(run_producer_consumer(1, 1, &x, 2), [(-1.0, 11.0); 2]);
    // Not asked for: the producer is told nobody wants it, records nothing.
    assert!(run_producer_consumer(1, 0, &x, 1).into_iter().all(unknown));
    // Recorded unasked: a reader sees it anyway (it is still true).
    assert_eq!(run_producer_consumer(2, 0, &x, 1), [(-1.0, 11.0)]);
    // Asked for but never recorded: nothing known.
    assert!(run_producer_consumer(0, 1, &x, 1).into_iter().all(unknown));
    // Recorded at the first invoke only: the second knows nothing.
    let seen = run_producer_consumer(3, 1, &x, 2);
    assert_eq!(seen[0], (-1.0, 11.0));
    assert!(unknown(seen[1]), "a stale range reached the next invoke: {:?}", seen[1]);
}

/// `with_builtins` carries MediaPipe's `Convolution2DTransposeBias` (on the
/// GEMM transposed-convolution kernel, at 1 and 2 threads): the selfie
/// segmenter runs without user registration and gives the outputs of the
/// user op above (the reference scatter) within float tolerance.
#[test]
fn selfie_segmentation_runs_with_the_builtin_mediapipe_op() {
    let Some(path) = support::fixture("selfie_segmentation.tflite") else {
        eprintln!("skipping: selfie_segmentation.tflite not found");
        return;
    };
    let model = Model::from_file(&path).unwrap();
    let run = |resolver: &OpResolver, threads: usize| {
        let mut it = Interpreter::new(&model, resolver, InterpreterOptions { threads, ..Default::default() }).unwrap();
        it.allocate_tensors().unwrap();
        let n: usize = it.input(0).unwrap().shape().iter().product();
        let x: Vec<f32> = (0..n as u32).map(|i| ((i.wrapping_mul(2654435761) >> 9) % 1000) as f32 / 1000.0).collect();
        it.set_input(0, &x).unwrap();
        it.invoke().unwrap();
        it.output(0).unwrap().as_slice::<f32>().unwrap().to_vec()
    };
    let mut user = OpResolver::with_builtins();
    user.add_custom("Convolution2DTransposeBias", Convolution2DTransposeBias);
    let want = run(&user, 1);
    for threads in [1, 2] {
        let got = run(&OpResolver::with_builtins(), threads);
        assert_eq!(got.len(), want.len());
        let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "threads {threads}: max |diff| {worst}");
    }
}

/// A one-node model of MediaPipe's `Convolution2DTransposeBias`: input
/// `in_shape`, a constant filter `f_shape` and bias, `options` as the
/// custom options bytes, output declared `out_shape`.
fn mediapipe_model(in_shape: [i32; 4], f_shape: [i32; 4], options: Vec<u8>, out_shape: [i32; 4]) -> Vec<u8> {
    let tensor = |shape: &[i32], buffer: u32| fb::Tensor {
        shape: Some(shape.to_vec()),
        type_: fb::TensorType::Float32,
        buffer,
        ..Default::default()
    };
    let floats = |n: i32, seed: u32| fb::Buffer {
        data: Some(
            (0..n as u32)
                .flat_map(|i| (((i.wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0).to_le_bytes())
                .collect(),
        ),
        ..Default::default()
    };
    let model = fb::Model {
        version: 3,
        operator_codes: Some(vec![fb::OperatorCode {
            deprecated_builtin_code: 32,
            builtin_code: fb::BuiltinOperator::Custom,
            custom_code: Some("Convolution2DTransposeBias".into()),
            version: 1,
        }]),
        subgraphs: Some(vec![fb::SubGraph {
            tensors: Some(vec![
                tensor(&in_shape, 0),
                tensor(&f_shape, 1),
                tensor(&[f_shape[0]], 2),
                tensor(&out_shape, 0),
            ]),
            inputs: Some(vec![0]),
            outputs: Some(vec![3]),
            operators: Some(vec![fb::Operator {
                opcode_index: 0,
                inputs: Some(vec![0, 1, 2]),
                outputs: Some(vec![3]),
                custom_options: Some(options),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
        buffers: Some(vec![fb::Buffer::default(), floats(f_shape.iter().product(), 3), floats(f_shape[0], 7)]),
        ..Default::default()
    };
    fb::finish_model(&mut planus::Builder::new(), &model)
}

fn ints(v: [i32; 3]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Malformed options of the built-in `Convolution2DTransposeBias` are
/// errors naming what is wrong, not panics.
#[test]
fn mediapipe_transpose_conv_rejects_bad_options() {
    for (options, want) in [(vec![1u8, 0, 0, 0], "12"), (ints([7, 2, 2]), "padding"), (ints([1, 0, 2]), "stride_w")] {
        let bytes = mediapipe_model([1, 4, 4, 3], [2, 3, 3, 3], options, [1, 8, 8, 2]);
        let model = Model::from_bytes(&bytes).unwrap();
        let resolver = OpResolver::with_builtins();
        let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
        let err = it.allocate_tensors().unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
}

/// MediaPipe's output sizes and padding, which differ from TRANSPOSE_CONV's
/// where the input size is not a multiple of the stride or the filter is
/// smaller than the stride: shapes (hand-computed from MediaPipe's
/// formulas) and values of the built-in op against the user op above.
#[test]
fn mediapipe_transpose_conv_sizes_follow_mediapipe() {
    // (input h/w, filter h/w, stride, padding 1 SAME / 2 VALID, expected output h/w)
    let cases = [
        ((3, 4), (3, 3), 2, 1, (5, 8)),
        ((4, 4), (1, 1), 2, 1, (7, 7)),
        ((5, 3), (4, 2), 3, 1, (14, 8)),
        ((3, 4), (3, 3), 2, 2, (7, 9)),
        ((6, 6), (2, 2), 2, 1, (12, 12)),
    ];
    for ((ih, iw), (kh, kw), s, padding, (oh, ow)) in cases {
        let bytes = mediapipe_model([1, ih, iw, 3], [4, kh, kw, 3], ints([padding, s, s]), [1, oh, ow, 4]);
        let model = Model::from_bytes(&bytes).unwrap();
        let x: Vec<f32> = (0..(ih * iw * 3) as u32).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect();
        let run = |resolver: &OpResolver, threads: usize| {
            let mut it =
                Interpreter::new(&model, resolver, InterpreterOptions { threads, ..Default::default() }).unwrap();
            it.allocate_tensors().unwrap();
            assert_eq!(it.output(0).unwrap().shape(), &[1, oh as usize, ow as usize, 4], "{ih}x{iw} k{kh}x{kw} s{s}");
            it.set_input(0, &x).unwrap();
            it.invoke().unwrap();
            it.output(0).unwrap().as_slice::<f32>().unwrap().to_vec()
        };
        let mut user = OpResolver::with_builtins();
        user.add_custom("Convolution2DTransposeBias", Convolution2DTransposeBias);
        let want = run(&user, 1);
        for threads in [1, 2] {
            let got = run(&OpResolver::with_builtins(), threads);
            let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{ih}x{iw} k{kh}x{kw} s{s} threads {threads}: {worst}");
        }
    }
}
