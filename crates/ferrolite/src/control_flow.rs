//! WHILE, IF and CALL_ONCE: operators that run other subgraphs of the model.
//!
//! TFLite models get these from `tf.while_loop` / `tf.cond`, and from every
//! Keras RNN layer that the converter does not fuse (GRU, SimpleRNN): the
//! recurrence becomes a WHILE whose body subgraph is one time step. Models
//! with resource variables start with a CALL_ONCE, which runs the subgraph
//! that initialises them on the interpreter's first invoke and never again.
//!
//! The interpreter handles them itself rather than through the op registry,
//! because a node here owns whole interpreters for its subgraphs, borrowing
//! the model. Each child is prepared when the parent is (its input shapes
//! are the node's input shapes), and at eval the node's tensors are copied
//! in and out -- loop state is small next to the work of a loop step.
//!
//! Loop variables keep their shapes: a WHILE body must give every loop
//! variable back with the shape it came in with, and both branches of an IF
//! must produce the same output shapes; anything else is refused with the
//! tensor named. Inside a subgraph, though, shapes may depend on computed
//! values (Keras RNN bodies slice their output buffer at the step counter):
//! such a subgraph cannot be planned once, so it runs eagerly
//! (`Interpreter::run_eager`: each node prepared on its actual inputs, then
//! evaluated). A loop that runs more than
//! [`InterpreterOptions::max_while_iterations`](crate::InterpreterOptions)
//! times fails instead of hanging.

use std::sync::Arc;

use crate::dtype::DataType;
use crate::error::{Error, OpError};
use crate::interpreter::{Interpreter, InterpreterOptions};
use crate::model::Model;
use crate::registry::OpResolver;
use crate::resource::{self, SharedResources};

/// The subgraphs a control-flow node runs. A CALL_ONCE runs `init` unless
/// a CALL_ONCE of this interpreter already ran subgraph `subgraph` (TFLite
/// keeps that per interpreter, not per node).
pub(crate) enum ControlFlow<'m> {
    While { cond: Child<'m>, body: Child<'m>, max_iterations: u64 },
    If { then_branch: Child<'m>, else_branch: Child<'m> },
    CallOnce { init: Child<'m>, subgraph: usize, resources: SharedResources },
}

/// A subgraph's interpreter: planned once (`eager: false`), or re-prepared
/// on every run because some shape inside depends on computed values.
pub(crate) struct Child<'m> {
    it: Box<Interpreter<'m>>,
    eager: bool,
    role: String,
}

impl Child<'_> {
    /// `(dtype, shape)` of each output; shapes are `None` for an eager
    /// subgraph (known only once it has run).
    fn output_types(&self) -> Result<OutputTypes, OpError> {
        self.it
            .outputs()
            .iter()
            .map(|&t| {
                let info = self.it.tensor_info(t).map_err(|e| op_error(&self.role, e))?;
                Ok((info.dtype, (!self.eager).then(|| info.shape.clone())))
            })
            .collect()
    }

    fn run(&mut self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, OpError> {
        if self.eager {
            return self.it.run_eager(inputs).map_err(|e| op_error(&self.role, e));
        }
        for (k, v) in inputs.iter().enumerate() {
            self.it.set_input_bytes(k, v).map_err(|e| op_error(&self.role, e))?;
        }
        self.it.invoke().map_err(|e| op_error(&self.role, e))?;
        (0..self.it.output_count())
            .map(|k| self.it.output(k).map(|o| o.bytes.to_vec()).map_err(|e| op_error(&self.role, e)))
            .collect()
    }
}

/// Type and shape of each output of a subgraph or node; `None` where the
/// shape is known only after an eager run.
pub(crate) type OutputTypes = Vec<(DataType, Option<Vec<usize>>)>;

/// The subgraphs running above a node (to refuse recursion), their worker
/// pool and resource variables (shared with the node's subgraphs).
pub(crate) type Caller<'a> = (&'a [usize], Option<Arc<crate::pool::WorkerPool>>, SharedResources);

/// A node's input as the parent sees it at prepare.
pub(crate) struct NodeInput {
    pub dtype: DataType,
    pub shape: Vec<usize>,
}

fn op_error(context: &str, e: Error) -> OpError {
    OpError::Value(format!("{context}: {e}"))
}

/// An interpreter for `subgraph`, its inputs resized to `inputs` and
/// allocated. `stack` holds the subgraphs already being run above it, so a
/// model whose subgraphs call each other in a cycle is refused.
fn child<'m>(
    model: &'m Model<'m>,
    subgraph: usize,
    resolver: &OpResolver,
    options: &InterpreterOptions,
    (stack, pool, resources): Caller<'_>,
    inputs: &[NodeInput],
    role: &str,
) -> Result<Child<'m>, OpError> {
    if stack.contains(&subgraph) {
        return Err(OpError::Value(format!(
            "{role} subgraph {subgraph} is already running above this node (subgraphs {stack:?}): recursion is not allowed"
        )));
    }
    let sg = model
        .subgraphs
        .get(subgraph)
        .ok_or_else(|| OpError::Value(format!("{role} subgraph {subgraph} does not exist")))?;
    if sg.inputs.len() != inputs.len() {
        return Err(OpError::Value(format!(
            "{role} subgraph {subgraph} takes {} inputs, the node passes {}",
            sg.inputs.len(),
            inputs.len()
        )));
    }
    let mut it =
        Interpreter::for_subgraph_nested(model, subgraph, resolver, options.clone(), stack, pool, Some(resources))
            .map_err(|e| op_error(&format!("{role} subgraph {subgraph}"), e))?;
    for (k, input) in inputs.iter().enumerate() {
        let t = sg.inputs[k];
        let want = sg.tensors[t].info.dtype;
        if want != input.dtype {
            return Err(OpError::DType {
                tensor: format!("input {k} of {role} subgraph {subgraph}"),
                expected: want.to_string(),
                got: input.dtype.to_string(),
            });
        }
        it.resize_input(k, &input.shape).map_err(|e| op_error(&format!("{role} subgraph {subgraph}"), e))?;
    }
    let role = format!("{role} subgraph {subgraph}");
    let eager = match it.allocate_tensors() {
        Ok(()) => false,
        Err(Error::Op { error: OpError::DynamicShape(_), .. }) => true,
        Err(e) => return Err(op_error(&role, e)),
    };
    Ok(Child { it: Box::new(it), eager, role })
}

impl<'m> ControlFlow<'m> {
    /// Prepare a WHILE node: returns it with the node's output types and
    /// shapes (those of its inputs).
    pub(crate) fn prepare_while(
        model: &'m Model<'m>,
        resolver: &OpResolver,
        options: &InterpreterOptions,
        caller: Caller<'_>,
        cond: usize,
        body: usize,
        inputs: &[NodeInput],
    ) -> Result<(Self, OutputTypes), OpError> {
        let cond_it = child(model, cond, resolver, options, caller.clone(), inputs, "WHILE condition")?;
        let outs = cond_it.output_types()?;
        let one_value = |s: &Option<Vec<usize>>| s.as_ref().is_none_or(|s| s.iter().product::<usize>() == 1);
        if outs.len() != 1 || outs[0].0 != DataType::Bool || !one_value(&outs[0].1) {
            return Err(OpError::Value(format!(
                "WHILE condition subgraph {cond} must output one bool value, it outputs {outs:?}"
            )));
        }
        let body_it = child(model, body, resolver, options, caller, inputs, "WHILE body")?;
        let outs = body_it.output_types()?;
        if outs.len() != inputs.len() {
            return Err(OpError::Value(format!(
                "WHILE body subgraph {body} returns {} values for {} loop variables",
                outs.len(),
                inputs.len()
            )));
        }
        for (k, ((dtype, shape), input)) in outs.iter().zip(inputs).enumerate() {
            // An eager body's shapes are checked as it runs (the byte counts
            // must stay those of the loop variables).
            if *dtype != input.dtype || shape.as_ref().is_some_and(|s| *s != input.shape) {
                return Err(OpError::Unsupported(format!(
                    "WHILE body subgraph {body} turns loop variable {k} from {} {:?} into {dtype} {shape:?}; \
                     only shape-preserving loops are supported",
                    input.dtype, input.shape
                )));
            }
        }
        let types = inputs.iter().map(|i| (i.dtype, Some(i.shape.clone()))).collect();
        Ok((ControlFlow::While { cond: cond_it, body: body_it, max_iterations: options.max_while_iterations }, types))
    }

    /// Prepare an IF node (`inputs[0]` is the condition, the rest go to the
    /// branch); returns it with the node's output types and shapes.
    pub(crate) fn prepare_if(
        model: &'m Model<'m>,
        resolver: &OpResolver,
        options: &InterpreterOptions,
        caller: Caller<'_>,
        then_sg: usize,
        else_sg: usize,
        inputs: &[NodeInput],
    ) -> Result<(Self, OutputTypes), OpError> {
        let Some((cond, args)) = inputs.split_first() else {
            return Err(OpError::Value("IF needs a condition input".into()));
        };
        if cond.dtype != DataType::Bool || cond.shape.iter().product::<usize>() != 1 {
            return Err(OpError::Value(format!(
                "IF condition must be one bool value, got {} {:?}",
                cond.dtype, cond.shape
            )));
        }
        let then_it = child(model, then_sg, resolver, options, caller.clone(), args, "IF then")?;
        let else_it = child(model, else_sg, resolver, options, caller, args, "IF else")?;
        let (a, b) = (then_it.output_types()?, else_it.output_types()?);
        let agree = a.len() == b.len()
            && a.iter().zip(&b).all(|((ta, sa), (tb, sb))| ta == tb && (sa.is_none() || sb.is_none() || sa == sb));
        if !agree {
            return Err(OpError::Unsupported(format!(
                "IF branches give different outputs (then {a:?}, else {b:?}); only matching shapes are supported"
            )));
        }
        // Where one branch is eager, the other's (or the file's) shapes stand.
        let merged = a.into_iter().zip(b).map(|((t, sa), (_, sb))| (t, sa.or(sb))).collect();
        Ok((ControlFlow::If { then_branch: then_it, else_branch: else_it }, merged))
    }

    /// Prepare a CALL_ONCE node: it takes no inputs and gives no outputs,
    /// and neither may its subgraph.
    pub(crate) fn prepare_call_once(
        model: &'m Model<'m>,
        resolver: &OpResolver,
        options: &InterpreterOptions,
        caller: Caller<'_>,
        init: usize,
        inputs: &[NodeInput],
    ) -> Result<(Self, OutputTypes), OpError> {
        if !inputs.is_empty() {
            return Err(OpError::Arity { what: "inputs", expected: "0".into(), got: inputs.len() });
        }
        let resources = caller.2.clone();
        let init_it = child(model, init, resolver, options, caller, inputs, "CALL_ONCE init")?;
        let outs = init_it.output_types()?;
        if !outs.is_empty() {
            return Err(OpError::Value(format!(
                "CALL_ONCE init subgraph {init} must have no outputs, it has {}",
                outs.len()
            )));
        }
        Ok((ControlFlow::CallOnce { init: init_it, subgraph: init, resources }, Vec::new()))
    }

    /// Run the node on `inputs` (the bytes of its input tensors) and return
    /// the bytes of its outputs.
    pub(crate) fn run(&mut self, inputs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, OpError> {
        match self {
            ControlFlow::While { cond, body, max_iterations } => {
                let mut state = inputs;
                let mut iterations = 0u64;
                loop {
                    let go = cond.run(&state)?;
                    if go.first().and_then(|v| v.first()) == Some(&0) {
                        return Ok(state);
                    }
                    if iterations >= *max_iterations {
                        return Err(OpError::Value(format!(
                            "WHILE ran {iterations} iterations without its condition turning false \
                             (InterpreterOptions::max_while_iterations)"
                        )));
                    }
                    iterations += 1;
                    let next = body.run(&state)?;
                    for (k, (s, n)) in state.iter().zip(&next).enumerate() {
                        if s.len() != n.len() {
                            return Err(OpError::Unsupported(format!(
                                "WHILE body changed the size of loop variable {k} from {} to {} bytes; \
                                 only shape-preserving loops are supported",
                                s.len(),
                                n.len()
                            )));
                        }
                    }
                    state = next;
                }
            }
            ControlFlow::If { then_branch, else_branch } => {
                let take_then = inputs.first().and_then(|c| c.first()).is_some_and(|&b| b != 0);
                let branch = if take_then { then_branch } else { else_branch };
                branch.run(&inputs[1..])
            }
            ControlFlow::CallOnce { init, subgraph, resources } => {
                // Not locked while the subgraph runs: its ops lock the store.
                if resource::lock(resources).is_initialized(*subgraph) {
                    return Ok(Vec::new());
                }
                init.run(&[])?;
                resource::lock(resources).mark_initialized(*subgraph);
                Ok(Vec::new())
            }
        }
    }
}
