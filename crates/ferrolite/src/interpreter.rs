//! Load, allocate, invoke.
//!
//! `allocate_tensors()` prepares every node in order (shapes flow from the
//! inputs through each op's `prepare`), evaluates nodes whose inputs are all
//! constant once (constant folding: fp16 weight DEQUANTIZE, shape
//! arithmetic), and plans one arena for the remaining intermediates.
//! `invoke()` then only runs kernels.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::arena::{ArenaPlan, ArenaRequest};
use crate::control_flow::{ControlFlow, NodeInput};
use crate::dtype::{DataType, Element};
use crate::error::{Error, Location, OpError, Result};
use crate::model::{Model, SignatureDef, SubgraphDef};
use crate::op::{EvalContext, InputInfo, PrepareContext, PreparedOp, Workers};
use crate::pool::WorkerPool;
use crate::registry::{OpResolver, Registration};
use crate::resource::SharedResources;
use crate::tensor::{AlignedBytes, TensorInfo, TensorMut, TensorRef};
use ferrolite_schema::{self as fb, BuiltinOperator};

/// Settings of an interpreter.
#[derive(Clone, Debug)]
pub struct InterpreterOptions {
    /// Threads that run kernels, the calling thread included (1 = no pool).
    /// More threads than CPUs only adds waiting.
    pub threads: usize,
    /// Give every intermediate tensor its own arena memory for the whole run,
    /// so [`Interpreter::tensor`] can read any of them after `invoke()`
    /// (TFLite's `experimental_preserve_all_tensors`). For debugging: the
    /// arena grows to the sum of all activations.
    pub preserve_all_tensors: bool,
    /// Run the reference kernels only (TFLite's `BUILTIN_REF` resolver):
    /// float sums in TFLite's reference order, for bit-level comparisons
    /// with Google's reference outputs. Slower.
    pub reference_kernels: bool,
    /// Pack float convolution and FULLY_CONNECTED weights into the GEMM's
    /// layout at `allocate_tensors()` (the default: fastest invokes). When
    /// off, those kernels read the weights in place from the model (zero
    /// copy): allocation takes about a millisecond instead of a copy of every
    /// weight, and large convolutions run slower (about 1.3-1.9x on AVX2).
    /// Worth it for a model run once, or where memory is tight.
    pub pack_weights: bool,
    /// Run a float CONV_2D and the DEPTHWISE_CONV_2D that reads its output
    /// as one node, band by band, so the intermediate never leaves the
    /// cache (on by default; see `ops::conv_depthwise`). Off with
    /// `reference_kernels` or `preserve_all_tensors`.
    pub fuse_ops: bool,
    /// A WHILE loop that runs more iterations than this fails with an error
    /// instead of running on (a malformed or hostile model could loop
    /// forever). The default, a million, is far above any real sequence.
    pub max_while_iterations: u64,
}

impl Default for InterpreterOptions {
    fn default() -> Self {
        InterpreterOptions {
            threads: 1,
            preserve_all_tensors: false,
            reference_kernels: false,
            pack_weights: true,
            fuse_ops: true,
            max_while_iterations: 1_000_000,
        }
    }
}

/// Where a tensor's bytes live.
#[derive(Clone, Debug)]
enum Storage {
    /// Absent or not yet allocated.
    None,
    /// A constant inside the model file (zero-copy).
    Model(Range<usize>),
    /// Owned: constants that needed copying or were folded, and variables.
    Owned(AlignedBytes),
    /// An intermediate, input or output in the arena.
    Arena(Range<usize>),
}

impl Storage {
    fn is_constant(&self) -> bool {
        matches!(self, Storage::Model(_) | Storage::Owned(_))
    }
}

struct Node<'m> {
    name: String,
    registration: Option<Registration>,
    version: i32,
    prepared: Option<Box<dyn PreparedOp>>,
    /// WHILE and IF: the subgraphs the node runs (instead of `prepared`).
    control: Option<ControlFlow<'m>>,
    /// Evaluated at prepare: skipped by invoke.
    folded: bool,
    /// Fused into that later node, which does this node's work too:
    /// skipped by invoke.
    fused_into: Option<usize>,
    /// Set on a node that took over an earlier one: the tensors its
    /// prepared op reads (the model's list for the node otherwise), and the
    /// name it runs under in profiles and errors.
    fused: Option<(Vec<Option<usize>>, String)>,
    /// Inputs (positions in the model's list) whose recorded range the
    /// prepared op reads (`PrepareContext::reads_input_range`).
    range_inputs: Vec<usize>,
}

impl Node<'_> {
    fn skipped(&self) -> bool {
        self.folded || self.fused_into.is_some()
    }

    /// The op's name, or both names for a fused pair.
    fn display_name(&self) -> &str {
        self.fused.as_ref().map_or(&self.name, |(_, n)| n)
    }
}

/// Time spent in one node, reported by [`Interpreter::invoke_profiled`].
#[derive(Clone, Debug)]
pub struct NodeTiming {
    pub node: usize,
    pub op: String,
    pub elapsed: Duration,
}

/// Runs one subgraph of a model.
pub struct Interpreter<'m> {
    model: &'m Model<'m>,
    subgraph: usize,
    options: InterpreterOptions,
    tensors: Vec<TensorInfo>,
    storage: Vec<Storage>,
    /// Per tensor, the min/max of its values that the node which wrote it
    /// in this invoke recorded, if it did (`EvalContext::input_range`).
    /// Cleared at the start of each invoke and when the caller writes a
    /// tensor.
    ranges: Vec<Option<(f32, f32)>>,
    /// Per tensor, whether a node reads its range (so its producer records it).
    range_wanted: Vec<bool>,
    nodes: Vec<Node<'m>>,
    arena: AlignedBytes,
    arena_plan: ArenaPlan,
    allocated: bool,
    /// Input shapes set by `resize_input`, kept across re-allocation.
    input_shapes: Vec<Option<Vec<usize>>>,
    /// Created once when `threads > 1`; kernels borrow it at eval, and the
    /// interpreters of WHILE/IF subgraphs share it.
    pool: Option<Arc<WorkerPool>>,
    /// Kept to build the interpreters of WHILE/IF subgraphs.
    resolver: OpResolver,
    /// Subgraphs running above this one (for a WHILE/IF subgraph), to refuse
    /// recursion.
    callers: Vec<usize>,
    /// Input values for an eager run (see `run_eager`): while set,
    /// `allocate_tensors` treats the inputs as constants.
    eager_inputs: Option<Vec<Vec<u8>>>,
    /// Resource variables and CALL_ONCE marks: made by a top-level
    /// interpreter, shared with its subgraphs' and signature runners'.
    resources: SharedResources,
}

impl<'m> Interpreter<'m> {
    /// An interpreter for the model's first subgraph.
    pub fn new(model: &'m Model<'m>, resolver: &OpResolver, options: InterpreterOptions) -> Result<Interpreter<'m>> {
        Interpreter::for_subgraph(model, 0, resolver, options)
    }

    /// An interpreter for any subgraph (signatures may name another one).
    pub fn for_subgraph(
        model: &'m Model<'m>,
        subgraph: usize,
        resolver: &OpResolver,
        options: InterpreterOptions,
    ) -> Result<Interpreter<'m>> {
        Interpreter::for_subgraph_nested(model, subgraph, resolver, options, &[], None, None)
    }

    /// An interpreter for a subgraph run by a WHILE/IF/CALL_ONCE node of
    /// the subgraphs in `callers`, sharing the caller's worker pool and
    /// resource variables.
    pub(crate) fn for_subgraph_nested(
        model: &'m Model<'m>,
        subgraph: usize,
        resolver: &OpResolver,
        options: InterpreterOptions,
        callers: &[usize],
        shared_pool: Option<Arc<WorkerPool>>,
        shared_resources: Option<SharedResources>,
    ) -> Result<Interpreter<'m>> {
        let sg = model
            .subgraphs
            .get(subgraph)
            .ok_or_else(|| Error::InvalidArgument(format!("subgraph {subgraph} does not exist")))?;
        let nodes = sg
            .operators
            .iter()
            .map(|op| {
                let code = &model.operator_codes[op.opcode_index];
                Node {
                    name: code.name(),
                    registration: resolver.find(code),
                    version: code.version,
                    prepared: None,
                    control: None,
                    folded: false,
                    fused_into: None,
                    fused: None,
                    range_inputs: Vec::new(),
                }
            })
            .collect();
        let options = InterpreterOptions { threads: options.threads.max(1), ..options };
        let pool = if shared_pool.is_some() {
            shared_pool
        } else if options.threads > 1 {
            let pool = WorkerPool::new(options.threads)
                .map_err(|e| Error::InvalidArgument(format!("cannot start {} worker threads: {e}", options.threads)))?;
            Some(Arc::new(pool))
        } else {
            None
        };
        Ok(Interpreter {
            pool,
            resolver: resolver.clone(),
            callers: callers.to_vec(),
            eager_inputs: None,
            resources: shared_resources.unwrap_or_default(),
            model,
            subgraph,
            options,
            tensors: sg.tensors.iter().map(|t| t.info.clone()).collect(),
            storage: vec![Storage::None; sg.tensors.len()],
            ranges: vec![None; sg.tensors.len()],
            range_wanted: vec![false; sg.tensors.len()],
            nodes,
            arena: AlignedBytes::default(),
            arena_plan: ArenaPlan::default(),
            allocated: false,
            input_shapes: vec![None; sg.inputs.len()],
        })
    }

    fn sg(&self) -> &'m SubgraphDef {
        &self.model.subgraphs[self.subgraph]
    }

    pub fn model(&self) -> &'m Model<'m> {
        self.model
    }

    /// Number of nodes (operators) in the subgraph.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes of the arena planned by the last `allocate_tensors()`.
    pub fn arena_size(&self) -> usize {
        self.arena_plan.size
    }

    /// Bytes held outside the arena: folded constants, copied weights, variables.
    pub fn owned_bytes(&self) -> usize {
        self.storage.iter().map(|s| if let Storage::Owned(b) = s { b.len() } else { 0 }).sum()
    }

    /// Prepare every node and plan the arena. Call again after `resize_input`.
    pub fn allocate_tensors(&mut self) -> Result<()> {
        self.allocated = false;
        let model = self.model;
        let sg = self.sg();
        let si = self.subgraph;

        // Start from the file's description, with resized inputs applied.
        for (i, t) in sg.tensors.iter().enumerate() {
            self.tensors[i] = t.info.clone();
            self.storage[i] = match &t.data {
                Some(r) if t.info.is_variable => Storage::Owned(AlignedBytes::from_slice(model.slice(r))),
                Some(r) if is_aligned(model.slice(r), t.info.dtype.size().unwrap_or(1)) => Storage::Model(r.clone()),
                Some(r) => Storage::Owned(AlignedBytes::from_slice(model.slice(r))),
                None if t.info.is_variable => {
                    let loc = Location::Tensor { subgraph: si, tensor: i, name: t.info.name.clone() };
                    let mut b = try_zeroed(tensor_bytes(&t.info, &loc)?, &loc)?;
                    b.as_mut_slice().fill(variable_reset_byte(&t.info));
                    Storage::Owned(b)
                }
                None => Storage::None,
            };
        }
        for (k, &t) in sg.inputs.iter().enumerate() {
            if let Some(shape) = &self.input_shapes[k] {
                self.tensors[t].shape = shape.clone();
            }
        }
        if let Some(values) = &self.eager_inputs {
            for (k, &t) in sg.inputs.iter().enumerate() {
                let info = &self.tensors[t];
                let loc = Location::Tensor { subgraph: si, tensor: t, name: info.name.clone() };
                let want = tensor_bytes(info, &loc)?;
                let value = values.get(k).map(Vec::as_slice).unwrap_or_default();
                if value.len() != want {
                    return Err(Error::InvalidArgument(format!(
                        "input {k} ('{}') holds {want} bytes, got {}",
                        info.name,
                        value.len()
                    )));
                }
                self.storage[t] = Storage::Owned(AlignedBytes::from_slice(value));
            }
        }

        // Prepare in order; fold nodes whose inputs are all known.
        for (ni, op) in sg.operators.iter().enumerate() {
            let node = &mut self.nodes[ni];
            node.prepared = None;
            node.control = None;
            node.folded = false;
            node.fused_into = None;
            node.fused = None;
            node.range_inputs.clear();
            let loc = Location::Operator { subgraph: si, index: ni, op: node.name.clone() };
            let code = model.operator_codes[op.opcode_index].builtin_code;
            let subgraph_ops = [BuiltinOperator::While, BuiltinOperator::If, BuiltinOperator::CallOnce];
            if subgraph_ops.iter().any(|&c| c as i32 == code) {
                self.prepare_control_flow(ni, &loc)?;
                continue;
            }
            let node = &mut self.nodes[ni];
            let Some(reg) = node.registration.clone() else {
                return Err(Error::UnsupportedOp {
                    subgraph: si,
                    node: ni,
                    op: node.name.clone(),
                    version: node.version,
                });
            };
            let inputs: Vec<Option<InputInfo<'_>>> = op
                .inputs
                .iter()
                .map(|t| {
                    t.map(|t| InputInfo {
                        info: &self.tensors[t],
                        constant: constant_bytes(model, &self.storage[t], self.tensors[t].is_variable),
                        sparsity: sg.tensors[t].sparsity.as_deref(),
                    })
                })
                .collect();
            let all_constant = !inputs.is_empty() && inputs.iter().flatten().all(|i| i.constant.is_some());
            let mut ctx = PrepareContext {
                node: ni,
                op_name: &node.name,
                version: node.version,
                builtin_options: op.builtin_options.as_ref(),
                builtin_options_2: op.builtin_options_2.as_ref(),
                custom_options: model.slice(&op.custom_options),
                threads: self.options.threads,
                reference_kernels: self.options.reference_kernels,
                pack_weights: self.options.pack_weights,
                inputs,
                intermediates: op.intermediates.iter().filter_map(|&t| self.tensors.get(t)).collect(),
                outputs: op.outputs.iter().map(|&t| self.tensors[t].clone()).collect(),
                constant_outputs: vec![None; op.outputs.len()],
                range_inputs: Vec::new(),
            };
            let prepared = reg.op.prepare(&mut ctx).map_err(|error| Error::Op { location: loc.clone(), error })?;
            let PrepareContext { outputs, constant_outputs, range_inputs, .. } = ctx;
            node.range_inputs = range_inputs;
            for ((&t, info), constant) in op.outputs.iter().zip(outputs).zip(constant_outputs) {
                if info.dtype != self.tensors[t].dtype {
                    return Err(Error::Op {
                        location: loc,
                        error: OpError::Value(format!("prepare changed the type of output tensor {t}")),
                    });
                }
                let bytes = info.dtype.bytes_for(info.num_elements()).ok_or_else(|| Error::Op {
                    location: loc.clone(),
                    error: OpError::Unsupported(format!("output tensor {t} of type {}", info.dtype)),
                })?;
                self.tensors[t].shape = info.shape;
                if let Some(c) = constant {
                    if c.len() != bytes {
                        return Err(Error::Op {
                            location: loc,
                            error: OpError::Value(format!("constant output has {} bytes, expected {bytes}", c.len())),
                        });
                    }
                    self.storage[t] = Storage::Owned(c);
                    node.folded = true;
                }
            }
            node.prepared = Some(prepared);
            if !node.folded && all_constant && reg.pure {
                self.fold_node(ni, &loc)?;
            }
        }

        if !self.options.reference_kernels && !self.options.preserve_all_tensors && self.options.fuse_ops {
            self.fuse_nodes();
        }
        // Which tensors' ranges a running node will read.
        self.range_wanted.fill(false);
        for (ni, op) in sg.operators.iter().enumerate() {
            if !self.nodes[ni].skipped() {
                for &i in &self.nodes[ni].range_inputs {
                    if let Some(&Some(t)) = op.inputs.get(i) {
                        self.range_wanted[t] = true;
                    }
                }
            }
        }
        self.plan_arena()?;
        self.allocated = true;
        Ok(())
    }

    /// Set every variable tensor (state such as an LSTM's, which ops update
    /// at each invoke and which otherwise carries over to the next) back to
    /// its initial value from the model, or zeros -- for int8 the zero point
    /// (TFLite's `ResetVariableTensors`). `allocate_tensors()` does this too; TFLite's
    /// skips a call that changes nothing, keeping the state. Resource
    /// variables (VAR_HANDLE) keep their values, as in TFLite.
    pub fn reset_variable_tensors(&mut self) -> Result<()> {
        let model = self.model;
        let sg = self.sg();
        for (i, t) in sg.tensors.iter().enumerate() {
            if !t.info.is_variable {
                continue;
            }
            if let Storage::Owned(b) = &mut self.storage[i] {
                match &t.data {
                    Some(r) if model.slice(r).len() == b.len() => b.as_mut_slice().copy_from_slice(model.slice(r)),
                    _ => b.as_mut_slice().fill(variable_reset_byte(&t.info)),
                }
            }
        }
        Ok(())
    }

    /// Run once with all input values known up front: every node is
    /// prepared seeing its actual inputs and evaluated at once (constant
    /// folding of the whole graph), so ops whose output shapes depend on
    /// computed values work. Used for WHILE/IF subgraphs that cannot be
    /// planned statically; slower than `invoke` (it prepares every time).
    pub(crate) fn run_eager(&mut self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        self.eager_inputs = Some(inputs.to_vec());
        let ran = self.allocate_tensors().and_then(|()| self.invoke());
        self.eager_inputs = None;
        ran?;
        let outputs = (0..self.output_count()).map(|k| self.output(k).map(|o| o.bytes.to_vec())).collect();
        self.allocated = false;
        outputs
    }

    /// Build and prepare the subgraph interpreters of a WHILE, IF or
    /// CALL_ONCE node and give its outputs their types and shapes.
    fn prepare_control_flow(&mut self, ni: usize, loc: &Location) -> Result<()> {
        let model = self.model;
        let op = &self.sg().operators[ni];
        let err = |error: OpError| Error::Op { location: loc.clone(), error };
        let mut inputs = Vec::with_capacity(op.inputs.len());
        for (k, t) in op.inputs.iter().enumerate() {
            let t = t.ok_or_else(|| err(OpError::Value(format!("input {k} is missing"))))?;
            inputs.push(NodeInput { dtype: self.tensors[t].dtype, shape: self.tensors[t].shape.clone() });
        }
        let mut callers = self.callers.clone();
        callers.push(self.subgraph);
        let (control, outputs) = match &op.builtin_options {
            Some(fb::BuiltinOptions::WhileOptions(o)) => ControlFlow::prepare_while(
                model,
                &self.resolver,
                &self.options,
                (&callers, self.pool.clone(), self.resources.clone()),
                subgraph_index(o.cond_subgraph_index).map_err(err)?,
                subgraph_index(o.body_subgraph_index).map_err(err)?,
                &inputs,
            ),
            Some(fb::BuiltinOptions::IfOptions(o)) => ControlFlow::prepare_if(
                model,
                &self.resolver,
                &self.options,
                (&callers, self.pool.clone(), self.resources.clone()),
                subgraph_index(o.then_subgraph_index).map_err(err)?,
                subgraph_index(o.else_subgraph_index).map_err(err)?,
                &inputs,
            ),
            Some(fb::BuiltinOptions::CallOnceOptions(o)) => ControlFlow::prepare_call_once(
                model,
                &self.resolver,
                &self.options,
                (&callers, self.pool.clone(), self.resources.clone()),
                subgraph_index(o.init_subgraph_index).map_err(err)?,
                &inputs,
            ),
            _ => Err(OpError::Options(format!("{} without its options", self.nodes[ni].name))),
        }
        .map_err(err)?;
        if outputs.len() != op.outputs.len() {
            return Err(err(OpError::Value(format!(
                "the node has {} outputs, its subgraphs give {}",
                op.outputs.len(),
                outputs.len()
            ))));
        }
        for (&t, (dtype, shape)) in op.outputs.iter().zip(outputs) {
            if self.tensors[t].dtype != dtype {
                return Err(err(OpError::DType {
                    tensor: format!("output tensor {t}"),
                    expected: dtype.to_string(),
                    got: self.tensors[t].dtype.to_string(),
                }));
            }
            if let Some(shape) = shape {
                self.tensors[t].shape = shape;
            }
        }
        self.nodes[ni].control = Some(control);
        Ok(())
    }

    /// Run a WHILE, IF or CALL_ONCE node: copy its inputs in, its outputs
    /// back.
    fn eval_control_flow(&mut self, ni: usize, arena: &mut [u8]) -> Result<(), OpError> {
        let model = self.model;
        let op = &model.subgraphs[self.subgraph].operators[ni];
        let read = |t: usize| -> Vec<u8> {
            match &self.storage[t] {
                Storage::Model(r) => model.slice(r).to_vec(),
                Storage::Owned(b) => b.as_slice().to_vec(),
                Storage::Arena(r) => arena[r.clone()].to_vec(),
                Storage::None => Vec::new(),
            }
        };
        let inputs: Vec<Vec<u8>> = op.inputs.iter().map(|t| t.map(read).unwrap_or_default()).collect();
        let control = self.nodes[ni].control.as_mut().ok_or_else(|| OpError::Value("node was not prepared".into()))?;
        let outputs = control.run(inputs)?;
        for (&t, bytes) in op.outputs.iter().zip(outputs) {
            // Copied values: nothing is known about their range.
            self.ranges[t] = None;
            let dst: &mut [u8] = match &mut self.storage[t] {
                Storage::Arena(r) => &mut arena[r.clone()],
                Storage::Owned(b) => b.as_mut_slice(),
                _ => return Err(OpError::Value(format!("output tensor {t} has no storage"))),
            };
            if dst.len() != bytes.len() {
                return Err(OpError::Value(format!(
                    "output tensor {t} holds {} bytes, the subgraph gave {}",
                    dst.len(),
                    bytes.len()
                )));
            }
            dst.copy_from_slice(&bytes);
        }
        Ok(())
    }

    /// Evaluate a node with constant inputs now, keeping its outputs.
    fn fold_node(&mut self, ni: usize, loc: &Location) -> Result<()> {
        let op = &self.sg().operators[ni];
        for &t in &op.outputs {
            let bytes = tensor_bytes(&self.tensors[t], loc)?;
            self.storage[t] = Storage::Owned(try_zeroed(bytes, loc)?);
        }
        let mut empty: [u8; 0] = [];
        self.eval_node(ni, &mut empty).map_err(|error| Error::Op { location: loc.clone(), error })?;
        self.nodes[ni].folded = true;
        Ok(())
    }

    /// Fuse each float CONV_2D into the DEPTHWISE_CONV_2D right after it
    /// when that is the only reader of its output (see
    /// `ops::conv_depthwise`), and each float ADD/SUB/MUL/DIV into a RELU
    /// that reads it alone (`ops::binary::try_fuse_clamp`). The
    /// intermediate tensor then gets no memory.
    fn fuse_nodes(&mut self) {
        let sg = self.sg();
        let mut readers = vec![0usize; self.tensors.len()];
        for (ni, op) in sg.operators.iter().enumerate() {
            if !self.nodes[ni].skipped() {
                for &t in op.inputs.iter().flatten() {
                    readers[t] += 1;
                }
            }
        }
        for &t in sg.outputs.iter().chain(sg.inputs.iter()) {
            readers[t] += 1;
        }
        for ni in 0..sg.operators.len() {
            let (op, node) = (&sg.operators[ni], &self.nodes[ni]);
            if node.skipped() || node.control.is_some() || node.fused.is_some() {
                continue;
            }
            let Some(nj) = (ni + 1..sg.operators.len()).find(|&j| !self.nodes[j].skipped()) else { break };
            let next = &sg.operators[nj];
            let &[t] = op.outputs.as_slice() else { continue };
            if readers[t] != 1
                || next.inputs.first() != Some(&Some(t))
                || self.tensors[t].is_variable
                || !matches!(self.storage[t], Storage::None)
                || self.nodes[nj].control.is_some()
            {
                continue;
            }
            let (head, tail) = self.nodes.split_at_mut(nj);
            let name = format!("{}+{}", head[ni].name, tail[0].name);
            if crate::ops::conv_depthwise::try_fuse(&mut head[ni].prepared, &mut tail[0].prepared, op.inputs.len()) {
                let mut inputs = op.inputs.clone();
                inputs.push(None);
                inputs.extend(next.inputs.iter().skip(1));
                head[ni].fused_into = Some(nj);
                tail[0].fused = Some((inputs, name));
            } else if crate::ops::binary::try_fuse_clamp(&mut head[ni].prepared, &mut tail[0].prepared) {
                // The producer's inputs, the consumer's output.
                head[ni].fused_into = Some(nj);
                tail[0].fused = Some((op.inputs.clone(), name));
            }
        }
    }

    /// The earlier node whose work node `node` does too (fused into it), if
    /// any: a profile's time for `node` covers both.
    pub fn fused_producer(&self, node: usize) -> Option<usize> {
        self.nodes.iter().position(|n| n.fused_into == Some(node))
    }

    fn plan_arena(&mut self) -> Result<()> {
        let sg = self.sg();
        let n_steps = sg.operators.len();
        // first/last use per tensor that lives in the arena.
        let mut uses: Vec<Option<(usize, usize)>> = vec![None; self.tensors.len()];
        let mut touch = |t: usize, step: usize| {
            let u = uses[t].get_or_insert((step, step));
            u.0 = u.0.min(step);
            u.1 = u.1.max(step);
        };
        // Graph inputs and outputs live for the whole run, so callers can
        // set inputs once and read outputs after.
        for &t in sg.inputs.iter().chain(sg.outputs.iter()) {
            touch(t, 0);
            touch(t, n_steps);
        }
        for (ni, op) in sg.operators.iter().enumerate() {
            let node = &self.nodes[ni];
            if node.skipped() {
                continue;
            }
            let inputs = node.fused.as_ref().map_or(&op.inputs, |(i, _)| i);
            for &t in inputs.iter().flatten().chain(op.outputs.iter()).chain(op.intermediates.iter()) {
                touch(t, ni);
            }
        }
        let preserve = self.options.preserve_all_tensors;
        let mut ids = Vec::new();
        let mut requests = Vec::new();
        for (t, u) in uses.iter().enumerate() {
            let Some((first, last)) = *u else { continue };
            // Living to the end, no tensor's memory is handed on to another.
            let last = if preserve { n_steps } else { last };
            if self.storage[t].is_constant() {
                continue;
            }
            let info = &self.tensors[t];
            let loc = Location::Tensor { subgraph: self.subgraph, tensor: t, name: info.name.clone() };
            let size = tensor_bytes(info, &loc)?;
            ids.push(t);
            requests.push(ArenaRequest { size, first_use: first, last_use: last });
        }
        let plan = ArenaPlan::greedy_by_size(&requests).ok_or_else(|| Error::InvalidModel {
            location: Location::Subgraph(self.subgraph),
            message: "the activations need more memory than the address space".into(),
        })?;
        for (k, &t) in ids.iter().enumerate() {
            self.storage[t] = Storage::Arena(plan.offsets[k]..plan.offsets[k] + requests[k].size);
        }
        self.arena = try_zeroed(plan.size, &Location::Subgraph(self.subgraph))?;
        self.arena_plan = plan;
        Ok(())
    }

    /// Run the graph once.
    pub fn invoke(&mut self) -> Result<()> {
        self.invoke_with(|_, _, _| {})
    }

    /// Run the graph once and report each node's time.
    pub fn invoke_profiled(&mut self) -> Result<Vec<NodeTiming>> {
        let mut timings = Vec::new();
        self.invoke_with(|node, op, elapsed| timings.push(NodeTiming { node, op: op.to_string(), elapsed }))?;
        Ok(timings)
    }

    fn invoke_with(&mut self, mut on_node: impl FnMut(usize, &str, Duration)) -> Result<()> {
        if !self.allocated {
            return Err(Error::NotAllocated);
        }
        let mut arena = std::mem::take(&mut self.arena);
        self.ranges.fill(None);
        let result = (|| {
            for ni in 0..self.nodes.len() {
                if self.nodes[ni].skipped() {
                    continue;
                }
                let start = Instant::now();
                let run = if self.nodes[ni].control.is_some() {
                    self.eval_control_flow(ni, arena.as_mut_slice())
                } else {
                    self.eval_node(ni, arena.as_mut_slice())
                };
                run.map_err(|error| Error::Op {
                    location: Location::Operator {
                        subgraph: self.subgraph,
                        index: ni,
                        op: self.nodes[ni].display_name().to_string(),
                    },
                    error,
                })?;
                on_node(ni, self.nodes[ni].display_name(), start.elapsed());
            }
            Ok(())
        })();
        self.arena = arena;
        result
    }

    /// Give node `ni` views of its tensors and run its kernel.
    fn eval_node(&mut self, ni: usize, arena: &mut [u8]) -> Result<(), OpError> {
        let model = self.model;
        let op = &model.subgraphs[self.subgraph].operators[ni];
        let Interpreter { tensors, storage, ranges, range_wanted, nodes, pool, resources, .. } = self;
        let Node { prepared, fused, .. } = &mut nodes[ni];
        let prepared = prepared.as_mut().ok_or_else(|| OpError::Value("node was not prepared".into()))?;
        let op_inputs: &[Option<usize>] = fused.as_ref().map_or(&op.inputs, |(i, _)| i);

        // Collect the node's arena ranges (outputs writable, inputs read-only)
        // and split the arena into disjoint slices for them.
        let mut wanted: Vec<(Range<usize>, usize)> = Vec::with_capacity(op_inputs.len() + op.outputs.len());
        for &t in op_inputs.iter().flatten().chain(op.outputs.iter()) {
            if let Storage::Arena(r) = &storage[t] {
                if !wanted.iter().any(|(_, u)| *u == t) {
                    wanted.push((r.clone(), t));
                }
            }
        }
        wanted.sort_by_key(|(r, _)| r.start);
        let mut arena_views: Vec<(usize, &mut [u8])> = Vec::with_capacity(wanted.len());
        let mut rest: &mut [u8] = arena;
        let mut consumed = 0usize;
        for (r, t) in wanted {
            if r.start < consumed || r.end > consumed + rest.len() {
                return Err(OpError::Value(format!("arena ranges of tensor {t} overlap another tensor of this node")));
            }
            let (_, tail) = std::mem::take(&mut rest).split_at_mut(r.start - consumed);
            let (mine, tail) = tail.split_at_mut(r.len());
            arena_views.push((t, mine));
            rest = tail;
            consumed = r.end;
        }

        // Owned outputs (folding writes there) are taken out of storage for
        // the duration of the call.
        let mut owned_out: Vec<(usize, AlignedBytes)> = Vec::new();
        for &t in &op.outputs {
            if let Storage::Owned(b) = &mut storage[t] {
                owned_out.push((t, std::mem::take(b)));
            }
        }
        // So are variable inputs (state such as an LSTM's), lent mutably
        // through `EvalContext::variable_mut`: what the op writes persists.
        let mut owned_var: Vec<(usize, usize, AlignedBytes)> = Vec::new();
        for (k, t) in op_inputs.iter().enumerate() {
            let Some(t) = *t else { continue };
            if !tensors[t].is_variable || op.outputs.contains(&t) {
                continue;
            }
            if owned_var.iter().any(|(_, u, _)| *u == t) {
                // Lent mutably to the first input, it has no bytes for a
                // second one: refuse rather than hand the op an empty view.
                return Err(OpError::Value(format!("variable tensor {t} is wired to two inputs of this node")));
            }
            if let Storage::Owned(b) = &mut storage[t] {
                owned_var.push((k, t, std::mem::take(b)));
            }
        }

        let result = {
            let mut outputs: Vec<TensorMut<'_>> = Vec::with_capacity(op.outputs.len());
            let mut inputs: Vec<Option<TensorRef<'_>>> = Vec::with_capacity(op_inputs.len());
            let mut shared: Vec<(usize, &[u8])> = Vec::new();
            let mut out_slices: Vec<(usize, &mut [u8])> = Vec::new();
            for (t, v) in arena_views {
                if op.outputs.contains(&t) {
                    out_slices.push((t, v));
                } else {
                    shared.push((t, &*v));
                }
            }
            for (t, b) in owned_out.iter_mut() {
                out_slices.push((*t, b.as_mut_slice()));
            }
            for &t in &op.outputs {
                let pos = out_slices.iter().position(|(u, _)| *u == t);
                let bytes = match pos {
                    Some(p) => out_slices.swap_remove(p).1,
                    None => return Err(OpError::Value(format!("output tensor {t} has no storage"))),
                };
                outputs.push(TensorMut { info: &tensors[t], bytes });
            }
            let mut variables: Vec<Option<TensorMut<'_>>> = (0..op_inputs.len()).map(|_| None).collect();
            for (k, t, b) in owned_var.iter_mut() {
                variables[*k] = Some(TensorMut { info: &tensors[*t], bytes: b.as_mut_slice() });
            }
            for (k, t) in op_inputs.iter().enumerate() {
                if variables[k].is_some() {
                    inputs.push(None);
                    continue;
                }
                inputs.push(t.map(|t| {
                    let bytes: &[u8] = match &storage[t] {
                        Storage::Model(r) => model.slice(r),
                        Storage::Owned(b) => b.as_slice(),
                        Storage::Arena(_) => shared.iter().find(|(u, _)| *u == t).map(|(_, b)| *b).unwrap_or(&[]),
                        Storage::None => &[],
                    };
                    TensorRef { info: &tensors[t], bytes }
                }));
            }
            let input_ranges = op_inputs.iter().map(|t| t.and_then(|t| ranges[t])).collect();
            let mut ctx = EvalContext {
                inputs,
                outputs,
                variables,
                input_ranges,
                output_ranges: vec![None; op.outputs.len()],
                ranges_wanted: op.outputs.iter().map(|&t| range_wanted[t]).collect(),
                workers: Workers { pool: pool.as_deref() },
                resources,
            };
            let result = prepared.eval(&mut ctx);
            // What the node recorded about its outputs, or that nothing is
            // known (an error may have left them half written).
            for (k, &t) in op.outputs.iter().enumerate() {
                ranges[t] = ctx.output_ranges[k].filter(|_| result.is_ok());
            }
            result
        };
        for (t, b) in owned_out {
            storage[t] = Storage::Owned(b);
        }
        for (_, t, b) in owned_var {
            storage[t] = Storage::Owned(b);
        }
        result
    }

    // ----- inputs and outputs -------------------------------------------

    /// Tensor indices of the subgraph's inputs.
    pub fn inputs(&self) -> &'m [usize] {
        &self.sg().inputs
    }
    /// Tensor indices of the subgraph's outputs.
    pub fn outputs(&self) -> &'m [usize] {
        &self.sg().outputs
    }
    pub fn input_count(&self) -> usize {
        self.sg().inputs.len()
    }
    pub fn output_count(&self) -> usize {
        self.sg().outputs.len()
    }

    /// The description of any tensor (shapes are current after allocation).
    pub fn tensor_info(&self, tensor: usize) -> Result<&TensorInfo> {
        self.tensors.get(tensor).ok_or_else(|| Error::InvalidArgument(format!("tensor {tensor} does not exist")))
    }

    /// The position of the input with this tensor name.
    pub fn input_index(&self, name: &str) -> Result<usize> {
        self.sg()
            .inputs
            .iter()
            .position(|&t| self.tensors[t].name == name)
            .ok_or_else(|| Error::InvalidArgument(format!("no input named '{name}'")))
    }

    /// The position of the output with this tensor name.
    pub fn output_index(&self, name: &str) -> Result<usize> {
        self.sg()
            .outputs
            .iter()
            .position(|&t| self.tensors[t].name == name)
            .ok_or_else(|| Error::InvalidArgument(format!("no output named '{name}'")))
    }

    fn io_tensor(&self, list: &[usize], i: usize, what: &str) -> Result<usize> {
        list.get(i).copied().ok_or_else(|| {
            Error::InvalidArgument(format!("{what} {i} does not exist: the model has {} {what}s", list.len()))
        })
    }

    /// Read any allocated tensor. An intermediate's bytes are only its own
    /// until a later node reuses the memory (keep them all with
    /// `preserve_all_tensors`); a fused pair's intermediate has none (no
    /// bytes).
    pub fn tensor(&self, t: usize) -> Result<TensorRef<'_>> {
        if !self.allocated {
            return Err(Error::NotAllocated);
        }
        let info = self.tensor_info(t)?;
        let bytes: &[u8] = match &self.storage[t] {
            Storage::Model(r) => self.model.slice(r),
            Storage::Owned(b) => b.as_slice(),
            Storage::Arena(r) => &self.arena.as_slice()[r.clone()],
            Storage::None => &[],
        };
        Ok(TensorRef { info, bytes })
    }

    fn tensor_mut(&mut self, t: usize) -> Result<TensorMut<'_>> {
        if !self.allocated {
            return Err(Error::NotAllocated);
        }
        let info = self.tensors.get(t).ok_or_else(|| Error::InvalidArgument(format!("tensor {t} does not exist")))?;
        // The caller may change the values.
        self.ranges[t] = None;
        let bytes: &mut [u8] = match &mut self.storage[t] {
            Storage::Arena(r) => &mut self.arena.as_mut_slice()[r.clone()],
            Storage::Owned(b) => b.as_mut_slice(),
            _ => return Err(Error::InvalidArgument(format!("tensor {t} ('{}') is constant", info.name))),
        };
        Ok(TensorMut { info, bytes })
    }

    /// The i-th input, to read.
    pub fn input(&self, i: usize) -> Result<TensorRef<'_>> {
        self.tensor(self.io_tensor(self.inputs(), i, "input")?)
    }
    /// The i-th input, to fill before `invoke()`.
    pub fn input_mut(&mut self, i: usize) -> Result<TensorMut<'_>> {
        let t = self.io_tensor(self.inputs(), i, "input")?;
        self.tensor_mut(t)
    }
    /// The input with this tensor name, to fill.
    pub fn input_by_name(&mut self, name: &str) -> Result<TensorMut<'_>> {
        let i = self.input_index(name)?;
        self.input_mut(i)
    }
    /// The i-th output.
    pub fn output(&self, i: usize) -> Result<TensorRef<'_>> {
        self.tensor(self.io_tensor(self.outputs(), i, "output")?)
    }

    /// Copy `data` into the i-th input, checking type and length.
    pub fn set_input<T: Element>(&mut self, i: usize, data: &[T]) -> Result<()> {
        let mut t = self.input_mut(i)?;
        let name = t.name().to_string();
        let dst = t.as_slice_mut::<T>()?;
        if dst.len() != data.len() {
            return Err(Error::InvalidArgument(format!(
                "input {i} ('{name}') holds {} elements, got {}",
                dst.len(),
                data.len()
            )));
        }
        dst.copy_from_slice(data);
        Ok(())
    }

    /// Copy raw bytes (in the tensor's own type) into the i-th input.
    pub fn set_input_bytes(&mut self, i: usize, data: &[u8]) -> Result<()> {
        let t = self.input_mut(i)?;
        if t.bytes.len() != data.len() {
            return Err(Error::InvalidArgument(format!(
                "input {i} ('{}') holds {} bytes, got {}",
                t.name(),
                t.bytes.len(),
                data.len()
            )));
        }
        t.bytes.copy_from_slice(data);
        Ok(())
    }

    /// Change the shape of an input; call `allocate_tensors()` afterwards.
    pub fn resize_input(&mut self, i: usize, shape: &[usize]) -> Result<()> {
        let t = self.io_tensor(self.inputs(), i, "input")?;
        let info = &self.tensors[t];
        if shape.len() != info.shape.len() && !info.shape.is_empty() {
            // Rank changes are allowed by TFLite only where the signature
            // says the rank is unknown; keep it simple and refuse.
            if info.shape_signature.as_ref().is_some_and(|s| !s.is_empty()) {
                return Err(Error::InvalidArgument(format!(
                    "input {i} ('{}') has rank {}, cannot resize to rank {}",
                    info.name,
                    info.shape.len(),
                    shape.len()
                )));
            }
        }
        if let Some(sig) = &info.shape_signature {
            for (d, (&want, &got)) in sig.iter().zip(shape).enumerate() {
                if want >= 0 && want as usize != got {
                    return Err(Error::InvalidArgument(format!(
                        "input {i} ('{}') dimension {d} is fixed at {want} by the model, cannot resize to {got}",
                        info.name
                    )));
                }
            }
        }
        if crate::tensor::checked_num_elements(shape).is_none() {
            return Err(Error::InvalidArgument(format!("shape {shape:?} overflows")));
        }
        self.input_shapes[i] = Some(shape.to_vec());
        self.allocated = false;
        Ok(())
    }

    // ----- signatures ------------------------------------------------------

    /// The keys of the model's signatures.
    pub fn signature_keys(&self) -> Vec<&'m str> {
        self.model.signatures.iter().map(|s| s.key.as_str()).collect()
    }

    /// An interpreter bound to a signature, with named inputs and outputs.
    /// It shares this interpreter's resource variables (as TFLite's
    /// signature runners share their interpreter's).
    pub fn signature_runner(&self, key: &str, resolver: &OpResolver) -> Result<SignatureRunner<'m>> {
        SignatureRunner::with_resources(self.model, key, resolver, self.options.clone(), Some(self.resources.clone()))
    }
}

/// Runs a signature: the subgraph it names, with its input/output names.
pub struct SignatureRunner<'m> {
    pub interpreter: Interpreter<'m>,
    signature: &'m SignatureDef,
}

impl<'m> SignatureRunner<'m> {
    pub fn new(model: &'m Model<'m>, key: &str, resolver: &OpResolver, options: InterpreterOptions) -> Result<Self> {
        SignatureRunner::with_resources(model, key, resolver, options, None)
    }

    fn with_resources(
        model: &'m Model<'m>,
        key: &str,
        resolver: &OpResolver,
        options: InterpreterOptions,
        resources: Option<SharedResources>,
    ) -> Result<Self> {
        let signature = model
            .signatures
            .iter()
            .find(|s| s.key == key)
            .ok_or_else(|| Error::InvalidArgument(format!("no signature '{key}'")))?;
        let mut interpreter =
            Interpreter::for_subgraph_nested(model, signature.subgraph, resolver, options, &[], None, resources)?;
        interpreter.allocate_tensors()?;
        Ok(SignatureRunner { interpreter, signature })
    }

    pub fn input_names(&self) -> Vec<&'m str> {
        self.signature.inputs.iter().map(|(n, _)| n.as_str()).collect()
    }
    pub fn output_names(&self) -> Vec<&'m str> {
        self.signature.outputs.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn lookup(list: &[(String, usize)], name: &str, what: &str) -> Result<usize> {
        list.iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| Error::InvalidArgument(format!("the signature has no {what} named '{name}'")))
    }

    pub fn input_mut(&mut self, name: &str) -> Result<TensorMut<'_>> {
        let t = Self::lookup(&self.signature.inputs, name, "input")?;
        self.interpreter.tensor_mut(t)
    }
    pub fn output(&self, name: &str) -> Result<TensorRef<'_>> {
        let t = Self::lookup(&self.signature.outputs, name, "output")?;
        self.interpreter.tensor(t)
    }
    pub fn invoke(&mut self) -> Result<()> {
        self.interpreter.invoke()
    }
}

/// A subgraph index from an option field (negative ones are invalid).
fn subgraph_index(i: i32) -> std::result::Result<usize, OpError> {
    usize::try_from(i).map_err(|_| OpError::Options(format!("subgraph index {i} is negative")))
}

fn is_aligned(bytes: &[u8], align: usize) -> bool {
    (bytes.as_ptr() as usize).is_multiple_of(align.max(1))
}

/// The byte a variable tensor without initial data is filled with: TFLite's
/// `ResetVariableTensor` memsets 0, or the zero point for int8 (so an int8
/// state starts at the real value 0).
fn variable_reset_byte(info: &TensorInfo) -> u8 {
    match (&info.dtype, &info.quant) {
        (DataType::Int8, Some(q)) => q.zero_point() as i8 as u8,
        _ => 0,
    }
}

fn constant_bytes<'a>(model: &'a Model<'_>, s: &'a Storage, is_variable: bool) -> Option<&'a [u8]> {
    if is_variable {
        return None;
    }
    match s {
        Storage::Model(r) => Some(model.slice(r)),
        Storage::Owned(b) => Some(b.as_slice()),
        _ => None,
    }
}

/// Bytes a tensor needs; an error for types without a fixed size or a
/// shape whose byte count overflows (a resized input, say).
fn tensor_bytes(info: &TensorInfo, loc: &Location) -> Result<usize> {
    info.dtype
        .bytes_for(crate::tensor::checked_num_elements(&info.shape).unwrap_or(usize::MAX))
        .filter(|&b| b < isize::MAX as usize)
        .ok_or_else(|| Error::InvalidModel {
            location: loc.clone(),
            message: format!("shape {:?} of {} does not fit in memory", info.shape, info.dtype),
        })
}

/// A zeroed buffer, or an error (not an abort) if memory is short.
fn try_zeroed(bytes: usize, loc: &Location) -> Result<AlignedBytes> {
    AlignedBytes::try_zeroed(bytes)
        .ok_or_else(|| Error::InvalidModel { location: loc.clone(), message: format!("cannot allocate {bytes} bytes") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena_ranges(it: &Interpreter<'_>) -> Vec<Range<usize>> {
        it.storage
            .iter()
            .filter_map(|s| match s {
                Storage::Arena(r) if !r.is_empty() => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    fn overlaps(ranges: &[Range<usize>]) -> bool {
        let mut sorted = ranges.to_vec();
        sorted.sort_by_key(|r| r.start);
        sorted.windows(2).any(|w| w[1].start < w[0].end)
    }

    #[test]
    fn preserve_all_tensors_keeps_every_intermediate() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/models/mobilenet_v1_0.25_128.int8.tflite");
        let Ok(model) = Model::from_file(path) else {
            eprintln!("skipping: {path} not found");
            return;
        };
        let resolver = OpResolver::with_builtins();
        let run = |preserve: bool| {
            let options = InterpreterOptions { preserve_all_tensors: preserve, ..Default::default() };
            let mut it = Interpreter::new(&model, &resolver, options).unwrap();
            it.allocate_tensors().unwrap();
            let n = it.input(0).unwrap().bytes.len();
            let input: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            it.set_input_bytes(0, &input).unwrap();
            it.invoke().unwrap();
            it
        };
        let shared = run(false);
        let preserved = run(true);
        // The normal plan reuses memory; the preserving one never does.
        assert!(overlaps(&arena_ranges(&shared)));
        assert!(!overlaps(&arena_ranges(&preserved)));
        assert!(preserved.arena_size() > shared.arena_size());
        assert_eq!(shared.output(0).unwrap().bytes, preserved.output(0).unwrap().bytes);
        // Every intermediate still holds what its node wrote: re-running any
        // node on the kept inputs reproduces its kept outputs exactly.
        let mut preserved = preserved;
        let sg = &model.subgraphs[0];
        for (ni, op) in sg.operators.iter().enumerate() {
            let before: Vec<Vec<u8>> =
                op.outputs.iter().map(|&t| preserved.tensor(t).unwrap().bytes.to_vec()).collect();
            let mut arena = std::mem::take(&mut preserved.arena);
            preserved.eval_node(ni, arena.as_mut_slice()).unwrap();
            preserved.arena = arena;
            for (&t, b) in op.outputs.iter().zip(&before) {
                assert_eq!(preserved.tensor(t).unwrap().bytes, &b[..], "node {ni} output {t}");
            }
        }
    }
}
