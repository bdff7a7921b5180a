//! Randomly damaged model files must give `Ok` or `Err`, never a panic.
//!
//! Each case takes a shipped fixture, applies a few byte flips, truncations
//! or overwrites (mostly in the first KBs, where the FlatBuffer's tables
//! live; the weights come last), then loads, allocates and invokes it under
//! `catch_unwind`. A panic fails the case with the mutation that caused it;
//! proptest prints the shrunk mutation list and the seed it persisted.
//!
//! Bounds that keep a case cheap and the machine safe: allocation is skipped
//! when the file declares tensors larger than `MAX_DECLARED_BYTES` in all
//! (the interpreter zero-fills what it allocates, so a mutated shape of a
//! few GB would really be touched), and invoke is skipped when the planned
//! arena exceeds `MAX_ARENA_BYTES`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ferrolite::{Interpreter, InterpreterOptions, Model, OpResolver};
use proptest::prelude::*;

const MAX_ARENA_BYTES: usize = 64 << 20;
const MAX_DECLARED_BYTES: usize = 256 << 20;

fn fixture(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [
        root.join("testdata/models").join(name),
        root.join("testdata/generated").join(name),
        root.join("../shared/models").join(name),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// Fixture bytes by name, read once (absent fixtures as `None`).
type FixtureCache = std::sync::Mutex<Vec<(&'static str, Option<&'static [u8]>)>>;

fn load_fixture(name: &'static str) -> Option<&'static [u8]> {
    static CACHE: OnceLock<FixtureCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, b)) = cache.iter().find(|(n, _)| *n == name) {
        return *b;
    }
    let bytes = fixture(name).map(|p| &*Vec::leak(std::fs::read(p).unwrap()));
    if bytes.is_none() {
        eprintln!("skipped: fixture {name} is not present");
    }
    cache.push((name, bytes));
    bytes
}

/// One change to the file.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip one bit.
    Flip { pos: usize, bit: u8 },
    /// Set one byte.
    Byte { pos: usize, value: u8 },
    /// Write a 32-bit value that offsets, lengths and indices find
    /// interesting (0, -1, huge, just past the end...).
    Word { pos: usize, value: u32 },
    /// Overwrite a range with the same byte.
    Fill { pos: usize, len: usize, value: u8 },
    /// Copy a range of the file elsewhere in it (plausible offsets and tables
    /// in the wrong place).
    Copy { from: usize, to: usize, len: usize },
    /// Cut the file.
    Truncate { len: usize },
}

impl Mutation {
    fn apply(&self, b: &mut Vec<u8>) {
        let n = b.len();
        if n == 0 {
            return;
        }
        match *self {
            Mutation::Flip { pos, bit } => b[pos % n] ^= 1 << (bit % 8),
            Mutation::Byte { pos, value } => b[pos % n] = value,
            Mutation::Word { pos, value } => {
                let p = pos % n;
                let end = (p + 4).min(n);
                b[p..end].copy_from_slice(&value.to_le_bytes()[..end - p]);
            }
            Mutation::Fill { pos, len, value } => {
                let p = pos % n;
                let end = (p + len).min(n);
                b[p..end].fill(value);
            }
            Mutation::Copy { from, to, len } => {
                let (f, t) = (from % n, to % n);
                let len = len.min(n - f).min(n - t);
                b.copy_within(f..f + len, t);
            }
            Mutation::Truncate { len } => b.truncate(len % n),
        }
    }
}

/// Positions, weighted toward the first 4 KB.
fn position(len: usize) -> impl Strategy<Value = usize> {
    let head = len.min(4096);
    prop_oneof![
        4 => 0..head,
        1 => 0..len,
    ]
}

fn word(len: usize) -> impl Strategy<Value = u32> {
    let n = len as u32;
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(u32::MAX),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        Just(n),
        Just(n.wrapping_sub(4)),
        Just(n.wrapping_add(4)),
        0u32..64,
        any::<u32>(),
    ]
}

fn mutation(len: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (position(len), 0u8..8).prop_map(|(pos, bit)| Mutation::Flip { pos, bit }),
        2 => (position(len), any::<u8>()).prop_map(|(pos, value)| Mutation::Byte { pos, value }),
        3 => (position(len), word(len)).prop_map(|(pos, value)| Mutation::Word { pos, value }),
        1 => (position(len), 1usize..64, prop_oneof![Just(0u8), Just(0xff), any::<u8>()])
            .prop_map(|(pos, len, value)| Mutation::Fill { pos, len, value }),
        1 => (position(len), position(len), 1usize..64)
            .prop_map(|(from, to, len)| Mutation::Copy { from, to, len }),
        1 => (0..len).prop_map(|len| Mutation::Truncate { len }),
    ]
}

fn mutations(len: usize) -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(len), 1..4)
}

/// How far a mutated file got, for the statistics printed at the end.
#[derive(Debug, Default)]
struct Reached {
    loaded: bool,
    allocated: bool,
    invoked: bool,
}

/// Load, allocate and invoke. Errors are fine; only panics matter.
fn exercise(bytes: &[u8]) -> Reached {
    // A damaged loop condition may never turn false: keep such cases short.
    exercise_with(bytes, InterpreterOptions { max_while_iterations: 1000, ..Default::default() })
}

fn exercise_with(bytes: &[u8], options: InterpreterOptions) -> Reached {
    let mut reached = Reached::default();
    let Ok(model) = Model::from_bytes(bytes) else {
        return reached;
    };
    reached.loaded = true;
    // Every error must render (Display walks the names and locations).
    let resolver = OpResolver::with_builtins();
    let mut it = match Interpreter::new(&model, &resolver, options) {
        Ok(it) => it,
        Err(e) => {
            let _ = e.to_string();
            return reached;
        }
    };
    let declared: usize = model.subgraphs[0]
        .tensors
        .iter()
        .map(|t| {
            let count = t.info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            count.and_then(|c| t.info.dtype.bytes_for(c)).unwrap_or(usize::MAX)
        })
        .fold(0usize, usize::saturating_add);
    if declared > MAX_DECLARED_BYTES {
        return reached;
    }
    if let Err(e) = it.allocate_tensors() {
        let _ = e.to_string();
        return reached;
    }
    reached.allocated = true;
    if it.arena_size() > MAX_ARENA_BYTES {
        return reached;
    }
    // Some input data that is not all zeros.
    for i in 0..it.input_count() {
        if let Ok(t) = it.input_mut(i) {
            for (k, b) in t.bytes.iter_mut().enumerate() {
                *b = (k as u8).wrapping_mul(37);
            }
        }
    }
    match it.invoke() {
        Ok(()) => {
            reached.invoked = true;
            for o in 0..it.output_count() {
                let _ = it.output(o).map(|t| t.bytes.len());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    reached
}

fn check(name: &'static str, muts: &[Mutation]) -> Result<Reached, TestCaseError> {
    let Some(original) = load_fixture(name) else {
        return Ok(Reached::default());
    };
    let mut bytes = original.to_vec();
    for m in muts {
        m.apply(&mut bytes);
    }
    match catch_unwind(AssertUnwindSafe(|| exercise(&bytes))) {
        Ok(r) => Ok(r),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic)".into());
            Err(TestCaseError::fail(format!("{name} with mutations {muts:?} panicked: {msg}")))
        }
    }
}

/// `PROPTEST_CASES=100000 cargo test --test mutation` for a longer hunt.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const SINE: &str = "sine_float.tflite";
/// A float vision model that runs end to end today.
const FACE: &str = "face_detection_short_range.tflite";
/// Quantised: exercises the int8 paths as they land (until then, load and
/// prepare only).
const MOBILENET: &str = "mobilenet_v1_0.25_128.int8.tflite";

fn len_of(name: &'static str) -> usize {
    load_fixture(name).map_or(1, |b| b.len().max(1))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    #[test]
    fn mutated_sine_never_panics(muts in mutations(len_of(SINE))) {
        check(SINE, &muts)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    #[test]
    fn mutated_face_detection_never_panics(muts in mutations(len_of(FACE))) {
        check(FACE, &muts)?;
    }

    #[test]
    fn mutated_mobilenet_int8_never_panics(muts in mutations(len_of(MOBILENET))) {
        check(MOBILENET, &muts)?;
    }
}

/// WHILE / IF with their subgraphs (tf.while_loop + tf.cond; a Keras GRU
/// whose loop body runs eagerly): damaged subgraph indices, conditions and
/// loop shapes must end in errors, not panics, recursion or endless loops.
const CONTROL_FLOW: &str = "control_flow.f32.tflite";
const RECURRENT: &str = "recurrent.f32.tflite";

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(96), ..ProptestConfig::default() })]

    #[test]
    fn mutated_control_flow_never_panics(muts in mutations(len_of(CONTROL_FLOW))) {
        check(CONTROL_FLOW, &muts)?;
    }

    #[test]
    fn mutated_recurrent_never_panics(muts in mutations(len_of(RECURRENT))) {
        check(RECURRENT, &muts)?;
    }
}

/// The unmutated fixtures get all the way through, so the property above
/// exercises allocate and invoke, not only the loader.
#[test]
fn fixtures_run_unmutated() {
    for name in [SINE, FACE, CONTROL_FLOW, RECURRENT] {
        let Some(bytes) = load_fixture(name) else { continue };
        let r = exercise(bytes);
        assert!(r.loaded && r.allocated && r.invoked, "{name}: {r:?}");
    }
    if let Some(bytes) = load_fixture(MOBILENET) {
        assert!(exercise(bytes).loaded, "{MOBILENET} must load");
    }
}

/// Every truncation of the small fixture, and every single-byte change to
/// its first 512 bytes to 0x00 and 0xff: exhaustive where it is cheap.
#[test]
fn sine_exhaustive_truncations_and_bytes() {
    let Some(original) = load_fixture(SINE) else { return };
    let mut cases: Vec<Vec<Mutation>> = (0..original.len()).map(|len| vec![Mutation::Truncate { len }]).collect();
    for pos in 0..original.len().min(512) {
        for value in [0u8, 0xff] {
            cases.push(vec![Mutation::Byte { pos, value }]);
        }
    }
    let mut failures = Vec::new();
    let mut invoked = 0;
    for muts in &cases {
        match check(SINE, muts) {
            Ok(r) => invoked += usize::from(r.invoked),
            Err(e) => failures.push(e.to_string()),
        }
    }
    eprintln!("{} of {} damaged files ran to the end", invoked, cases.len());
    assert!(failures.is_empty(), "{} panics:\n{}", failures.len(), failures.join("\n"));
}
