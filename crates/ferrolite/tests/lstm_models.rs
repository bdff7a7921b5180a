//! UNIDIRECTIONAL_SEQUENCE_LSTM models (tools/make_fixtures.py `lstm`):
//! float, dynamic-range and fully integer weights against LiteRT, and the
//! state the op keeps in its variable tensors between invokes.

mod support;

use ferrolite::{Interpreter, InterpreterOptions, Model, OpResolver};

#[test]
fn lstm_f32_matches_litert() {
    support::check_float_fixture("lstm.f32", 1);
}

#[test]
fn lstm_dyn_matches_litert() {
    support::check_float_fixture("lstm.dyn", 1);
}

/// The fully integer LSTM (int8 activations, int16 cell state; TFLite's
/// 8x8_16 kernel) followed by an int8 FULLY_CONNECTED: equal to LiteRT's
/// reference kernels element for element.
#[test]
fn lstm_int8_matches_litert_exactly() {
    support::check_exact_fixture("lstm.int8", 1);
}

fn run(it: &mut Interpreter<'_>, x: &[u8]) -> Vec<f32> {
    it.set_input_bytes(0, x).unwrap();
    it.invoke().unwrap();
    it.output(0).unwrap().as_slice::<f32>().unwrap().to_vec()
}

/// LiteRT keeps the LSTM's output and cell state from one invoke to the
/// next: the same input gives a different output the second time, and
/// resetting the variables gives the first output again.
#[test]
fn lstm_state_persists_across_invokes() {
    let Some(path) = support::fixture("lstm.f32.tflite") else {
        eprintln!("skipping: lstm.f32 not found");
        return;
    };
    let model = Model::from_file(&path).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    let x = support::read_npy(&path.with_file_name("lstm.f32.in0.npy")).bytes;
    let first = run(&mut it, &x);
    let second = run(&mut it, &x);
    let gap = first.iter().zip(&second).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(gap > 0.1, "the second invoke should start from the first's state (gap {gap})");
    // LiteRT 2.3's second invoke on the same input: output [0, 0, :4] and
    // [0, 9, :4].
    let litert = [
        (0, [-0.469_336_18f32, -0.730_835_74, -0.115_833_84, 0.145_529_4]),
        (9 * 8, [-0.726_646_96, -0.449_091_64, -0.208_875_43, 0.020_523_78]),
    ];
    for (at, want) in litert {
        for (k, w) in want.iter().enumerate() {
            assert!((second[at + k] - w).abs() < 1e-4, "second invoke [{}]: {} vs {w}", at + k, second[at + k]);
        }
    }
    it.reset_variable_tensors().unwrap();
    assert_eq!(run(&mut it, &x), first);
}

/// The integer LSTM keeps its int8 output state and int16 cell state
/// across invokes too, and LiteRT starts them at the real value 0 (the int8
/// state at its zero point), as `reset_variable_tensors` does.
#[test]
fn lstm_int8_state_persists_and_resets() {
    let Some(path) = support::fixture("lstm.int8.tflite") else {
        eprintln!("skipping: lstm.int8 not found");
        return;
    };
    let model = Model::from_file(&path).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    let x = support::read_npy(&path.with_file_name("lstm.int8.in0.npy")).bytes;
    let run_i8 = |it: &mut Interpreter<'_>| {
        it.set_input_bytes(0, &x).unwrap();
        it.invoke().unwrap();
        it.output(0).unwrap().bytes.to_vec()
    };
    let first = run_i8(&mut it);
    assert_eq!(first, support::reference("lstm.int8", "ref", 0).bytes);
    let second = run_i8(&mut it);
    assert_ne!(first, second, "the second invoke should start from the first's state");
    it.reset_variable_tensors().unwrap();
    assert_eq!(run_i8(&mut it), first);
}
