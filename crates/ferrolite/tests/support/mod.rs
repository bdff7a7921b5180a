//! Shared by the whole-model tests: finding fixtures, reading .npy, running
//! a model on its seeded inputs.
#![allow(dead_code)]

pub mod builder;

use std::path::{Path, PathBuf};

use ferrolite::{DataType, Interpreter, InterpreterOptions, Model, OpResolver};

/// A fixture file: the repo's copies first (hand-picked models, then the
/// `tools/make_fixtures.py` ones), then the shared set beside the checkout
/// (where the large models live).
pub fn fixture(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [
        root.join("testdata/models").join(name),
        root.join("testdata/generated").join(name),
        root.join("../shared/models").join(name),
    ]
    .into_iter()
    .find(|p| p.exists())
}

pub struct Array {
    pub dtype: DataType,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl Array {
    pub fn as_f64(&self) -> Vec<f64> {
        let b = &self.bytes;
        match self.dtype {
            DataType::Float32 => b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
            DataType::Int8 => b.iter().map(|&v| v as i8 as f64).collect(),
            DataType::UInt8 => b.iter().map(|&v| v as f64).collect(),
            DataType::Int16 => b.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f64).collect(),
            DataType::Int32 => b.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
            DataType::Int64 => b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
            t => panic!("unsupported dtype {t}"),
        }
    }
}

pub fn read_npy(path: &Path) -> Array {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let descr = match npy.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        d => panic!("{d:?}"),
    };
    let dtype = match &descr[1..] {
        "f4" => DataType::Float32,
        "i1" => DataType::Int8,
        "u1" => DataType::UInt8,
        "i2" => DataType::Int16,
        "i4" => DataType::Int32,
        "i8" => DataType::Int64,
        d => panic!("dtype {d}"),
    };
    assert!(!descr.starts_with('>'), "big-endian npy");
    let n: usize = shape.iter().product::<usize>() * dtype.size().unwrap();
    let data = &bytes[bytes.len() - n..];
    Array { dtype, shape, bytes: data.to_vec() }
}

/// Run fixture `name` (without `.tflite`) on its `in*.npy` inputs.
/// `None` when the fixture is not available here.
pub fn run_fixture(name: &str, threads: usize) -> Option<Vec<Array>> {
    run_fixture_with(name, InterpreterOptions { threads, ..Default::default() })
}

/// `run_fixture` with any interpreter options.
pub fn run_fixture_with(name: &str, options: InterpreterOptions) -> Option<Vec<Array>> {
    let model_path = fixture(&format!("{name}.tflite"))?;
    let dir = model_path.parent().unwrap().to_path_buf();
    let model = Model::from_file(&model_path).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, options).unwrap();
    it.allocate_tensors().unwrap_or_else(|e| panic!("{name}: allocate: {e}"));
    for i in 0..it.input_count() {
        let a = read_npy(&dir.join(format!("{name}.in{i}.npy")));
        it.set_input_bytes(i, &a.bytes).unwrap_or_else(|e| panic!("{name}: input {i}: {e}"));
    }
    it.invoke().unwrap_or_else(|e| panic!("{name}: invoke: {e}"));
    Some(
        (0..it.output_count())
            .map(|i| {
                let t = it.output(i).unwrap();
                Array { dtype: t.dtype(), shape: t.shape().to_vec(), bytes: t.bytes.to_vec() }
            })
            .collect(),
    )
}

/// Reference outputs `{name}.{tag}{i}.npy` beside the model.
pub fn reference(name: &str, tag: &str, i: usize) -> Array {
    let model_path = fixture(&format!("{name}.tflite")).unwrap();
    read_npy(&model_path.parent().unwrap().join(format!("{name}.{tag}{i}.npy")))
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// The float acceptance rule: within 3x the gap between LiteRT's two
/// correct implementations, or a small relative floor.
pub fn check_float_fixture(name: &str, threads: usize) {
    check_float_fixture_with(name, InterpreterOptions { threads, ..Default::default() })
}

/// `check_float_fixture` with any interpreter options.
pub fn check_float_fixture_with(name: &str, options: InterpreterOptions) {
    let Some(outs) = run_fixture_with(name, options) else {
        eprintln!("skipping {name}: fixture not found");
        return;
    };
    for (i, out) in outs.iter().enumerate() {
        let r = reference(name, "ref", i);
        let x = reference(name, "xnn", i);
        assert_eq!(out.shape, r.shape, "{name} output {i} shape");
        let (o, r, x) = (out.as_f64(), r.as_f64(), x.as_f64());
        let drift = max_abs_diff(&x, &r);
        let max_ref = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let tol = (3.0 * drift).max(1e-5 * max_ref + 1e-6);
        let diff = max_abs_diff(&o, &r);
        eprintln!("{name} output {i}: max|ours-ref| = {diff:.3e}, tolerance {tol:.3e} (xnn drift {drift:.3e})");
        assert!(diff <= tol, "{name} output {i}: max|ours-ref| = {diff} > {tol}");
    }
}

/// The integer acceptance rule: equal element for element.
pub fn check_exact_fixture(name: &str, threads: usize) {
    let Some(outs) = run_fixture(name, threads) else {
        eprintln!("skipping {name}: fixture not found");
        return;
    };
    for (i, out) in outs.iter().enumerate() {
        let r = reference(name, "ref", i);
        assert_eq!(out.shape, r.shape, "{name} output {i} shape");
        assert_eq!(out.dtype, r.dtype, "{name} output {i} dtype");
        let (o, r) = (out.as_f64(), r.as_f64());
        let mismatches = o.iter().zip(&r).filter(|(a, b)| a != b).count();
        let diff = max_abs_diff(&o, &r);
        eprintln!("{name} output {i}: {mismatches} of {} elements differ, max diff {diff}", o.len());
        assert_eq!(mismatches, 0, "{name} output {i}: {mismatches} elements differ (max {diff})");
    }
}
