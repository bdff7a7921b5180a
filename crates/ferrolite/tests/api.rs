//! The interpreter's public API on a real model: signatures, resizable
//! inputs, typed views, errors on misuse.

mod support;

use ferrolite::{Error, Interpreter, InterpreterOptions, Model, OpResolver};

const MODEL: &str = "mobilenet_v1_0.25_128.f32";

fn input() -> Vec<f32> {
    let path = support::fixture(&format!("{MODEL}.in0.npy")).unwrap();
    support::read_npy(&path).as_f64().iter().map(|&v| v as f32).collect()
}

fn run_plain(model: &Model<'_>, x: &[f32]) -> Vec<f32> {
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    it.set_input(0, x).unwrap();
    it.invoke().unwrap();
    it.output(0).unwrap().as_slice::<f32>().unwrap().to_vec()
}

#[test]
fn signature_runner_names_inputs_and_outputs() {
    let model = Model::from_file(support::fixture(&format!("{MODEL}.tflite")).unwrap()).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    assert_eq!(it.signature_keys(), vec!["serving_default"]);
    let mut runner = it.signature_runner("serving_default", &resolver).unwrap();
    assert_eq!(runner.input_names(), vec!["keras_tensor"]);
    assert_eq!(runner.output_names(), vec!["output_0"]);
    let x = input();
    runner.input_mut("keras_tensor").unwrap().as_slice_mut::<f32>().unwrap().copy_from_slice(&x);
    runner.invoke().unwrap();
    let by_signature = runner.output("output_0").unwrap().as_slice::<f32>().unwrap().to_vec();
    assert_eq!(by_signature, run_plain(&model, &x));
    assert!(matches!(runner.output("nope"), Err(Error::InvalidArgument(_))));
    assert!(it.signature_runner("missing", &resolver).is_err());
}

#[test]
fn batch_dimension_resizes_and_rows_stay_independent() {
    let model = Model::from_file(support::fixture(&format!("{MODEL}.tflite")).unwrap()).unwrap();
    let x = input();
    let single = run_plain(&model, &x);
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.resize_input(0, &[2, 128, 128, 3]).unwrap();
    it.allocate_tensors().unwrap();
    let mut both = x.clone();
    both.extend(x.iter().map(|v| -v));
    it.set_input(0, &both).unwrap();
    it.invoke().unwrap();
    let out = it.output(0).unwrap();
    assert_eq!(out.shape(), &[2, single.len()]);
    let y = out.as_slice::<f32>().unwrap();
    let max_diff = y[..single.len()].iter().zip(&single).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max_diff < 1e-6, "batch row 0 differs from the single run by {max_diff}");
    // The second image is different, so its scores must be too.
    assert!(y[single.len()..].iter().zip(&single).any(|(a, b)| (a - b).abs() > 1e-4));
}

#[test]
fn fixed_dimensions_refuse_to_resize() {
    let model = Model::from_file(support::fixture(&format!("{MODEL}.tflite")).unwrap()).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    let err = it.resize_input(0, &[1, 64, 64, 3]).unwrap_err();
    assert!(err.to_string().contains("dimension 1 is fixed at 128"), "{err}");
}

#[test]
fn misuse_gives_typed_errors() {
    let model = Model::from_file(support::fixture(&format!("{MODEL}.tflite")).unwrap()).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    assert!(matches!(it.invoke(), Err(Error::NotAllocated)));
    it.allocate_tensors().unwrap();
    assert!(matches!(it.set_input(0, &[0i8; 4]), Err(Error::InvalidArgument(_))), "wrong element type");
    assert!(matches!(it.set_input(0, &[0f32; 4]), Err(Error::InvalidArgument(_))), "wrong length");
    assert!(matches!(it.input(5), Err(Error::InvalidArgument(_))));
    assert!(it.output(0).unwrap().as_slice::<i32>().is_err());
    assert_eq!(it.input_index("serving_default_keras_tensor:0").unwrap(), 0);
    assert!(it.arena_size() > 0);
}
