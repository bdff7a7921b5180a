// Fuzz the whole path a model file takes: load, allocate, invoke.
// Run: `cargo install cargo-fuzz && cargo +nightly fuzz run load_allocate_invoke -- -rss_limit_mb=2048`
// (seed the corpus with testdata/models/*.tflite: `cargo +nightly fuzz run load_allocate_invoke ../testdata/models`).
#![no_main]

use ferrolite::{Interpreter, InterpreterOptions, Model, OpResolver};
use libfuzzer_sys::fuzz_target;

/// Skip allocation when the file declares more tensor bytes than this (the
/// interpreter zero-fills what it allocates), and invoke when the arena is
/// larger: both keep an iteration fast and inside libFuzzer's RSS limit.
const MAX_DECLARED_BYTES: usize = 256 << 20;
const MAX_ARENA_BYTES: usize = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Model::from_bytes(data) else {
        return;
    };
    let resolver = OpResolver::with_builtins();
    let Ok(mut interpreter) = Interpreter::new(&model, &resolver, InterpreterOptions::default()) else {
        return;
    };
    let declared = model.subgraphs[0]
        .tensors
        .iter()
        .map(|t| {
            t.info
                .shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .and_then(|c| t.info.dtype.bytes_for(c))
                .unwrap_or(usize::MAX)
        })
        .fold(0usize, usize::saturating_add);
    if declared > MAX_DECLARED_BYTES {
        return;
    }
    if let Err(e) = interpreter.allocate_tensors() {
        let _ = e.to_string();
        return;
    }
    if interpreter.arena_size() > MAX_ARENA_BYTES {
        return;
    }
    for i in 0..interpreter.input_count() {
        if let Ok(t) = interpreter.input_mut(i) {
            for (k, b) in t.bytes.iter_mut().enumerate() {
                *b = (k as u8).wrapping_mul(37);
            }
        }
    }
    if let Err(e) = interpreter.invoke() {
        let _ = e.to_string();
    }
});
