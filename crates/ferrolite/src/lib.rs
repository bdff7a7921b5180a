//! ferrolite: run TensorFlow Lite models in pure Rust.
//!
//! ```no_run
//! use ferrolite::{Interpreter, InterpreterOptions, Model, OpResolver};
//! let model = Model::from_file("model.tflite")?;
//! let resolver = OpResolver::with_builtins();
//! let mut interpreter = Interpreter::new(&model, &resolver, InterpreterOptions::default())?;
//! interpreter.allocate_tensors()?;
//! interpreter.set_input(0, &vec![0.0f32; 128 * 128 * 3])?;
//! interpreter.invoke()?;
//! let scores: &[f32] = interpreter.output(0)?.as_slice()?;
//! # Ok::<(), ferrolite::Error>(())
//! ```
//!
//! Reading order for newcomers: [`model`] (the file, verified), [`interpreter`]
//! (prepare, arena plan, invoke), [`op`] (the operator interface), then any
//! file under `ops/`. The arithmetic itself lives in `ferrolite-kernels`.
#![deny(unsafe_code)]

pub mod arena;
mod control_flow;
pub mod dtype;
pub mod error;
pub mod interpreter;
pub mod model;
pub mod op;
pub mod ops;
mod pool;
pub mod registry;
mod resource;
pub mod tensor;

pub use dtype::{DataType, Element};
pub use error::{Error, Location, OpError, Result};
pub use interpreter::{Interpreter, InterpreterOptions, NodeTiming, SignatureRunner};
pub use model::Model;
pub use op::{EvalContext, InputInfo, Operator, PrepareContext, PreparedOp, Workers};
pub use registry::OpResolver;
pub use tensor::{QuantParams, TensorInfo, TensorMut, TensorRef};

/// The generated FlatBuffers types, for reading options of custom ops or
/// writing models.
pub use ferrolite_schema as schema;
