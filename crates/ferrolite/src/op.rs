//! The operator interface: what a builtin or custom op implements.
//!
//! An op is prepared once per `allocate_tensors()` and evaluated on every
//! `invoke()`, the split TFLite and tflite-micro use:
//! - [`Operator::prepare`] parses the options, checks the inputs' types and
//!   shapes, sets the outputs' shapes, and returns a [`PreparedOp`] holding
//!   whatever eval needs (parsed options, packed weights, lookup tables).
//! - [`PreparedOp::eval`] computes the outputs from the inputs' bytes.

use ferrolite_schema as fb;

use crate::dtype::{DataType, Element};
use crate::error::{Error, OpError};
use crate::resource::Resources;
use crate::tensor::{AlignedBytes, QuantParams, TensorInfo, TensorMut, TensorRef};
use std::sync::{Mutex, MutexGuard};

/// A kind of operator: builtin or user-registered custom.
pub trait Operator: Send + Sync {
    /// Check the node and return its prepared form.
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError>;
}

/// An operator prepared for one node with fixed input shapes. (`Any`: the
/// interpreter recognises the kernels it can fuse by their type.)
pub trait PreparedOp: std::any::Any + Send {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError>;
}

/// Convenience: a closure is a prepared op.
impl<F: FnMut(&mut EvalContext<'_>) -> Result<(), OpError> + Send + 'static> PreparedOp for F {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        self(ctx)
    }
}

impl From<Error> for OpError {
    fn from(e: Error) -> OpError {
        match e {
            Error::InvalidArgument(s) => OpError::Value(s),
            other => OpError::Value(other.to_string()),
        }
    }
}

/// What prepare knows about an input: its description and, for constants
/// (weights, shape tensors, folded results), its bytes.
#[derive(Clone, Copy)]
pub struct InputInfo<'a> {
    pub info: &'a TensorInfo,
    pub constant: Option<&'a [u8]>,
    /// Sparsity parameters of a sparse constant (its bytes are then the
    /// sparse values only); `None` for dense tensors.
    pub sparsity: Option<&'a ferrolite_schema::SparsityParameters>,
}

impl<'a> InputInfo<'a> {
    pub fn dtype(&self) -> DataType {
        self.info.dtype
    }
    pub fn shape(&self) -> &'a [usize] {
        &self.info.shape
    }
    pub fn quant(&self) -> Option<&'a QuantParams> {
        self.info.quant.as_ref()
    }
    pub fn is_constant(&self) -> bool {
        self.constant.is_some()
    }
    /// The constant's elements, or `None` if the input is computed at run time.
    pub fn constant_as<T: Element>(&self) -> Result<Option<&'a [T]>, OpError> {
        match self.constant {
            None => Ok(None),
            Some(bytes) => Ok(Some(TensorRef { info: self.info, bytes }.as_slice::<T>()?)),
        }
    }
}

/// Everything `prepare` may look at and set.
pub struct PrepareContext<'a> {
    /// Index of the node in its subgraph (for messages).
    pub node: usize,
    /// Builtin name (`CONV_2D`) or custom code.
    pub op_name: &'a str,
    pub version: i32,
    pub builtin_options: Option<&'a fb::BuiltinOptions>,
    pub builtin_options_2: Option<&'a fb::BuiltinOptions2>,
    /// Raw custom options (usually a FlexBuffer) of a custom op.
    pub custom_options: &'a [u8],
    pub threads: usize,
    /// The user asked for reference kernels only (no packed/SIMD plans).
    pub reference_kernels: bool,
    /// Float GEMM weights may be packed at prepare (see
    /// `InterpreterOptions::pack_weights`).
    pub pack_weights: bool,
    pub(crate) inputs: Vec<Option<InputInfo<'a>>>,
    /// The node's `intermediates` tensors (the schema's Operator field;
    /// the integer LSTM reads its gate scales from their quantisation).
    pub(crate) intermediates: Vec<&'a TensorInfo>,
    pub(crate) outputs: Vec<TensorInfo>,
    pub(crate) constant_outputs: Vec<Option<AlignedBytes>>,
    /// Inputs whose range the op reads at eval ([`Self::reads_input_range`]).
    pub(crate) range_inputs: Vec<usize>,
}

impl<'a> PrepareContext<'a> {
    /// Say that eval reads input `i`'s recorded range
    /// ([`EvalContext::input_range`]): its producer then records it
    /// ([`EvalContext::output_range_wanted`]). Producers that would have to
    /// look at their output only for this skip it for other readers.
    pub fn reads_input_range(&mut self, i: usize) {
        if !self.range_inputs.contains(&i) {
            self.range_inputs.push(i);
        }
    }

    pub fn num_inputs(&self) -> usize {
        self.inputs.len()
    }
    pub fn num_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Fail unless the node has between `min` and `max` inputs.
    pub fn check_inputs(&self, min: usize, max: usize) -> Result<(), OpError> {
        check_count("inputs", self.inputs.len(), min, max)
    }
    /// Fail unless the node has between `min` and `max` outputs.
    pub fn check_outputs(&self, min: usize, max: usize) -> Result<(), OpError> {
        check_count("outputs", self.outputs.len(), min, max)
    }

    /// A required input.
    pub fn input(&self, i: usize) -> Result<InputInfo<'a>, OpError> {
        self.inputs.get(i).copied().flatten().ok_or(OpError::MissingInput(i))
    }
    /// An input that may be absent (index -1, or past the end of the list).
    pub fn optional_input(&self, i: usize) -> Option<InputInfo<'a>> {
        self.inputs.get(i).copied().flatten()
    }
    /// Whether input `i` is a variable tensor (state the op may update at
    /// eval through [`EvalContext::variable_mut`]; never a constant).
    pub fn input_is_variable(&self, i: usize) -> bool {
        self.optional_input(i).is_some_and(|t| t.info.is_variable)
    }

    /// How many `intermediates` tensors the node lists.
    pub fn num_intermediates(&self) -> usize {
        self.intermediates.len()
    }
    /// Intermediate tensor `i` of the node (the operator's `intermediates`
    /// list: tensors the op may describe but never reads or writes, such as
    /// the integer LSTM's gate scales); `None` past the end of the list.
    pub fn intermediate(&self, i: usize) -> Option<&'a TensorInfo> {
        self.intermediates.get(i).copied()
    }

    pub fn output(&self, i: usize) -> Result<&TensorInfo, OpError> {
        self.outputs.get(i).ok_or_else(|| OpError::Value(format!("no output {i}")))
    }
    pub fn output_dtype(&self, i: usize) -> Result<DataType, OpError> {
        Ok(self.output(i)?.dtype)
    }

    /// Set an output's shape (prepare's main job).
    pub fn set_output_shape(&mut self, i: usize, shape: Vec<usize>) -> Result<(), OpError> {
        let out = self.outputs.get_mut(i).ok_or_else(|| OpError::Value(format!("no output {i}")))?;
        out.shape = shape;
        Ok(())
    }

    /// Give an output a value known at prepare (e.g. SHAPE's result); the
    /// node then never runs at invoke.
    pub fn set_output_constant(&mut self, i: usize, bytes: AlignedBytes) -> Result<(), OpError> {
        let slot = self.constant_outputs.get_mut(i).ok_or_else(|| OpError::Value(format!("no output {i}")))?;
        *slot = Some(bytes);
        Ok(())
    }

    /// The builtin options, or a clear error naming what was expected.
    pub fn options(&self) -> Option<&'a fb::BuiltinOptions> {
        self.builtin_options
    }
}

fn check_count(what: &'static str, got: usize, min: usize, max: usize) -> Result<(), OpError> {
    if got < min || got > max {
        let expected = if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(OpError::Arity { what, expected, got });
    }
    Ok(())
}

/// Fail with a DType error unless `t` has one of the accepted types.
pub fn expect_dtype(role: &str, got: DataType, accepted: &[DataType]) -> Result<(), OpError> {
    if accepted.contains(&got) {
        return Ok(());
    }
    Err(OpError::DType {
        tensor: role.to_string(),
        expected: accepted.iter().map(|d| d.name()).collect::<Vec<_>>().join(" or "),
        got: got.name().to_string(),
    })
}

/// The tensors of one node during `invoke`.
///
/// Inputs that are variable tensors (`is_variable`, e.g. an LSTM's state)
/// are lent mutably, through [`EvalContext::variable_mut`] only: ops read
/// and update them in place, and the update persists to the next invoke.
/// [`EvalContext::input`] on such an input is an error saying so.
pub struct EvalContext<'a> {
    pub(crate) inputs: Vec<Option<TensorRef<'a>>>,
    pub(crate) outputs: Vec<TensorMut<'a>>,
    /// One slot per input: `Some` for a variable tensor's storage.
    pub(crate) variables: Vec<Option<TensorMut<'a>>>,
    /// Per input, the min/max its producer recorded ([`Self::input_range`]).
    pub(crate) input_ranges: Vec<Option<(f32, f32)>>,
    /// Per output, what [`Self::set_output_range`] recorded.
    pub(crate) output_ranges: Vec<Option<(f32, f32)>>,
    /// Per output, whether a later node reads its range.
    pub(crate) ranges_wanted: Vec<bool>,
    /// Worker threads for kernels that split their output.
    pub workers: Workers<'a>,
    /// The interpreter's resource variables (VAR_HANDLE, READ_VARIABLE,
    /// ASSIGN_VARIABLE), shared with its subgraphs.
    pub(crate) resources: &'a Mutex<Resources>,
}

impl<'a> EvalContext<'a> {
    /// A required input. A variable input is an error: read and write it
    /// with [`EvalContext::variable_mut`].
    pub fn input(&self, i: usize) -> Result<TensorRef<'a>, OpError> {
        if self.is_variable(i) {
            return Err(OpError::Value(format!("input {i} is a variable tensor: use variable_mut")));
        }
        self.inputs.get(i).copied().flatten().ok_or(OpError::MissingInput(i))
    }
    /// An input that may be absent (`None` also for a variable input).
    pub fn optional_input(&self, i: usize) -> Option<TensorRef<'a>> {
        self.inputs.get(i).copied().flatten()
    }
    /// Whether input `i` is a variable tensor, lent by `variable_mut`.
    pub fn is_variable(&self, i: usize) -> bool {
        matches!(self.variables.get(i), Some(Some(_)))
    }
    /// A variable input (`is_variable`), to read and update in place; what
    /// the op leaves there is the tensor's value at the next invoke.
    pub fn variable_mut(&mut self, i: usize) -> Result<&mut TensorMut<'a>, OpError> {
        match self.variables.get_mut(i) {
            Some(Some(t)) => Ok(t),
            _ => Err(OpError::Value(format!("input {i} is not a variable tensor"))),
        }
    }
    /// Two distinct variable inputs at once (an LSTM's output and cell state).
    pub fn variables_mut2(&mut self, i: usize, j: usize) -> Result<(&mut TensorMut<'a>, &mut TensorMut<'a>), OpError> {
        if i == j {
            return Err(OpError::Value(format!("inputs {i} and {j} are the same")));
        }
        let (lo, hi) = (i.min(j), i.max(j));
        if hi >= self.variables.len() {
            return Err(OpError::Value(format!("input {hi} is not a variable tensor")));
        }
        let (a, b) = self.variables.split_at_mut(hi);
        let (x, y) = match (a[lo].as_mut(), b[0].as_mut()) {
            (Some(x), Some(y)) => (x, y),
            (None, _) => return Err(OpError::Value(format!("input {lo} is not a variable tensor"))),
            (_, None) => return Err(OpError::Value(format!("input {hi} is not a variable tensor"))),
        };
        Ok(if i < j { (x, y) } else { (y, x) })
    }
    pub fn num_inputs(&self) -> usize {
        self.inputs.len()
    }
    pub fn num_outputs(&self) -> usize {
        self.outputs.len()
    }
    pub fn output(&mut self, i: usize) -> Result<&mut TensorMut<'a>, OpError> {
        self.outputs.get_mut(i).ok_or_else(|| OpError::Value(format!("no output {i}")))
    }
    /// All outputs at once (for ops with several, like SPLIT).
    pub fn outputs_mut(&mut self) -> &mut [TensorMut<'a>] {
        &mut self.outputs
    }

    /// The interpreter's resource variables, locked: ops lock them only for
    /// the copy in or out.
    pub(crate) fn resources(&self) -> MutexGuard<'a, Resources> {
        crate::resource::lock(self.resources)
    }

    /// The smallest and largest value of float input `i`, when the node
    /// that wrote it in this invoke recorded them (hybrid ops do, while
    /// their output is still in cache): a hybrid op that quantises the
    /// input then needs no scan of its own. `None` says nothing is known.
    pub fn input_range(&self, i: usize) -> Option<(f32, f32)> {
        self.input_ranges.get(i).copied().flatten()
    }

    /// Whether a later node reads output `i`'s range
    /// ([`PrepareContext::reads_input_range`]): only then is it worth
    /// recording.
    pub fn output_range_wanted(&self, i: usize) -> bool {
        self.ranges_wanted.get(i).copied().unwrap_or(false)
    }

    /// Record the smallest and largest value this node wrote to float
    /// output `i`: every value of the tensor, none of them NaN. Readers
    /// trust it, so record only what was observed.
    pub fn set_output_range(&mut self, i: usize, range: (f32, f32)) {
        if let Some(slot) = self.output_ranges.get_mut(i) {
            *slot = Some(range);
        }
    }
}

/// The interpreter's worker threads, lent to kernels during eval.
#[derive(Clone, Copy)]
pub struct Workers<'a> {
    pub(crate) pool: Option<&'a crate::pool::WorkerPool>,
}

impl Workers<'_> {
    /// A single-threaded set (no pool).
    pub fn single() -> Workers<'static> {
        Workers { pool: None }
    }

    pub fn threads(&self) -> usize {
        self.pool.map_or(1, |p| p.threads())
    }

    /// Run `task(i)` for every `i < tasks`, on the pool when there is one.
    pub fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        match self.pool {
            Some(pool) => pool.run(tasks, task),
            None => (0..tasks).for_each(task),
        }
    }

    /// Run `f(first_unit, chunk)` over disjoint chunks of `out`, each a whole
    /// number of `unit`-element units (e.g. one output pixel's channels),
    /// on the pool when there is one. With one thread this is one call, so
    /// single-threaded inference pays nothing. A partial unit at the end
    /// (1000 FC outputs in units of 16) goes with the last chunk.
    pub fn for_each_chunk<T: Send>(&self, out: &mut [T], unit: usize, f: impl Fn(usize, &mut [T]) + Sync) {
        self.for_each_chunk_min(out, unit, 1, f)
    }

    /// [`Self::for_each_chunk`] with at least `min_units` units per chunk
    /// where there is enough work (but still one chunk per thread at
    /// least). GEMM-based kernels pass a few dozen rows: every chunk streams
    /// the whole weight matrix, so slicing a small output finely multiplies
    /// the weight traffic.
    pub fn for_each_chunk_min<T: Send>(
        &self,
        out: &mut [T],
        unit: usize,
        min_units: usize,
        f: impl Fn(usize, &mut [T]) + Sync,
    ) {
        self.for_each_row_block(out, unit, min_units, 1, f)
    }

    /// The split for GEMM-based kernels: chunks of at least 32 rows (each
    /// chunk streams all the weights), a whole number of 6-row micro-kernel
    /// tiles each (a chunk of 25 rows would end in a 1-row tile that costs
    /// nearly what a full one does).
    pub fn for_each_gemm_rows<T: Send>(&self, out: &mut [T], row_len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
        self.for_each_row_block(out, row_len, 32, 6, f)
    }

    /// [`Self::for_each_gemm_rows`] for GEMMs whose rows come out the same
    /// in any tile (the float GEMM, which also cuts any row count into
    /// 5- and 6-row tiles; integer sums, which do not depend on their
    /// order): with fewer rows than a few chunks per thread (a 7x7 layer's
    /// 49), the rows are shared evenly, 25 + 24 rather than whole tiles'
    /// 30 + 19.
    pub fn for_each_gemm_rows_even<T: Send>(&self, out: &mut [T], row_len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
        let rows = out.len() / row_len.max(1);
        match self.pool {
            Some(pool) if rows > 1 && rows < 6 * 8 * pool.threads() => {
                self.for_each_row_block(out, row_len, rows.div_ceil(pool.threads()), 1, f)
            }
            _ => self.for_each_gemm_rows(out, row_len, f),
        }
    }

    /// [`Self::for_each_chunk_min`] with chunks of a multiple of `align`
    /// units (but the last).
    fn for_each_row_block<T: Send>(
        &self,
        out: &mut [T],
        unit: usize,
        min_units: usize,
        align: usize,
        f: impl Fn(usize, &mut [T]) + Sync,
    ) {
        let unit = unit.max(1);
        let units = out.len() / unit;
        match self.pool {
            Some(pool) if units > 1 => {
                // Up to four chunks per thread balance uneven work without
                // paying much per-chunk overhead. The count is a multiple
                // of the threads and the tiles are dealt out evenly (sizes
                // differ by one tile at most): 196 GEMM rows in 36-row
                // chunks (36 * 5 + 16) left one of two threads 108 rows.
                let threads = pool.threads();
                let align = align.max(1);
                let tiles = units.div_ceil(align);
                let min_tiles = min_units.div_ceil(align).max(1);
                let chunks = (threads * (tiles / (threads * min_tiles)).clamp(1, 4)).min(tiles);
                let mut bounds = Vec::with_capacity(chunks);
                let mut rest: &mut [T] = out;
                let mut first = 0;
                for i in 0..chunks {
                    let n = ((tiles / chunks + usize::from(i < tiles % chunks)) * align).min(units - first);
                    // The last chunk also takes a partial unit at the end.
                    let len = if i + 1 == chunks { rest.len() } else { n * unit };
                    let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(len);
                    bounds.push(Mutex::new(Some((first, chunk))));
                    rest = tail;
                    first += n;
                }
                // Each task takes its own chunk out of its slot once.
                pool.run(bounds.len(), &|i| {
                    let chunk = bounds[i].lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some((first, c)) = chunk {
                        f(first, c);
                    }
                });
            }
            _ => f(0, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::WorkerPool;

    /// The chunks `for_each_*` hands out: (first unit, units), sorted.
    fn chunks_of(workers: &Workers<'_>, units: usize, gemm: bool) -> Vec<(usize, usize)> {
        chunks_with_tail(workers, units, 0, gemm)
    }

    /// [`chunks_of`] over `units` units of 3 values and `extra` values more.
    fn chunks_with_tail(workers: &Workers<'_>, units: usize, extra: usize, gemm: bool) -> Vec<(usize, usize)> {
        let mut out = vec![0u8; units * 3 + extra];
        let seen = Mutex::new(Vec::new());
        let record = |first: usize, c: &mut [u8]| {
            c.iter_mut().for_each(|v| *v += 1);
            seen.lock().unwrap().push((first, c.len() / 3));
        };
        if gemm {
            workers.for_each_gemm_rows(&mut out, 3, record);
        } else {
            workers.for_each_chunk(&mut out, 3, record);
        }
        assert!(out.iter().all(|&v| v == 1), "every value exactly once");
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        seen
    }

    #[test]
    fn chunks_cover_every_unit_once_and_in_place() {
        let pool = WorkerPool::new(2).unwrap();
        for workers in [Workers::single(), Workers { pool: Some(&pool) }] {
            for units in [0usize, 1, 5, 49, 196, 1000] {
                for gemm in [false, true] {
                    let chunks = chunks_of(&workers, units, gemm);
                    let mut next = 0;
                    for &(first, n) in &chunks {
                        assert_eq!(first, next, "{units} units: chunks in order, no gap");
                        next += n;
                    }
                    assert_eq!(next, units);
                }
            }
        }
    }

    #[test]
    fn a_partial_unit_at_the_end_goes_with_the_last_chunk() {
        // 1000 GEMV outputs in units of 16 leave 8: they must be computed
        // too (they were dropped, leaving stale outputs with 2 threads).
        let pool = WorkerPool::new(2).unwrap();
        for workers in [Workers::single(), Workers { pool: Some(&pool) }] {
            for units in [1usize, 2, 5, 62, 333] {
                for extra in [1, 2] {
                    let chunks = chunks_with_tail(&workers, units, extra, false);
                    let (first, n) = *chunks.last().unwrap();
                    assert_eq!(first + n, units, "{units} units + {extra}: the last chunk ends the units");
                }
            }
        }
    }

    #[test]
    fn few_gemm_rows_are_shared_evenly() {
        let pool = WorkerPool::new(2).unwrap();
        let workers = Workers { pool: Some(&pool) };
        for (rows, want) in
            [(49usize, vec![(0, 25), (25, 24)]), (64, vec![(0, 32), (32, 32)]), (3, vec![(0, 2), (2, 1)])]
        {
            let mut out = vec![0u8; rows * 3];
            let seen = Mutex::new(Vec::new());
            workers.for_each_gemm_rows_even(&mut out, 3, |first, c: &mut [u8]| {
                c.iter_mut().for_each(|v| *v += 1);
                seen.lock().unwrap().push((first, c.len() / 3));
            });
            assert!(out.iter().all(|&v| v == 1), "{rows} rows: every value once");
            let mut seen = seen.into_inner().unwrap();
            seen.sort();
            assert_eq!(seen, want, "{rows} rows");
        }
    }

    #[test]
    fn gemm_chunks_are_whole_6_row_tiles() {
        let pool = WorkerPool::new(2).unwrap();
        let workers = Workers { pool: Some(&pool) };
        for units in [49usize, 64, 196, 289, 1000, 12544] {
            let chunks = chunks_of(&workers, units, true);
            assert!(chunks.len() >= 2, "{units} rows use both threads");
            for &(_, n) in &chunks[..chunks.len() - 1] {
                assert!(n % 6 == 0 && n >= 24, "{units} rows: chunk of {n}");
            }
        }
    }

    #[test]
    fn chunks_split_evenly_between_threads() {
        for threads in [2usize, 3] {
            let pool = WorkerPool::new(threads).unwrap();
            let workers = Workers { pool: Some(&pool) };
            for units in [49usize, 196, 289, 1000, 12544] {
                for gemm in [false, true] {
                    let tile = if gemm { 6 } else { 1 };
                    let chunks = chunks_of(&workers, units, gemm);
                    assert_eq!(chunks.len() % threads, 0, "{units} units, {threads} threads: {chunks:?}");
                    let sizes: Vec<usize> = chunks[..chunks.len() - 1].iter().map(|c| c.1).collect();
                    let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                    assert!(hi - lo <= tile, "{units} units, {threads} threads: {chunks:?}");
                    assert!(chunks.last().unwrap().1 <= *hi);
                }
            }
        }
    }
}
