//! The one error type of the runtime.
//!
//! Every error names where it happened (subgraph, tensor, operator, byte
//! offset) so that a user with a broken model file knows what to look at.

use std::fmt;

/// Where in a model something is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Model,
    OperatorCode(usize),
    Buffer(usize),
    Subgraph(usize),
    Tensor { subgraph: usize, tensor: usize, name: String },
    Operator { subgraph: usize, index: usize, op: String },
    Signature(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Model => write!(f, "model"),
            Location::OperatorCode(i) => write!(f, "operator code {i}"),
            Location::Buffer(i) => write!(f, "buffer {i}"),
            Location::Subgraph(s) => write!(f, "subgraph {s}"),
            Location::Tensor { subgraph, tensor, name } => {
                write!(f, "subgraph {subgraph} tensor {tensor}")?;
                if !name.is_empty() {
                    write!(f, " ('{name}')")?;
                }
                Ok(())
            }
            Location::Operator { subgraph, index, op } => {
                write!(f, "subgraph {subgraph} operator {index} ({op})")
            }
            Location::Signature(i) => write!(f, "signature {i}"),
        }
    }
}

/// What an operator's `prepare` or `eval` found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpError {
    /// Wrong number of inputs or outputs.
    Arity { what: &'static str, expected: String, got: usize },
    /// A required input is absent (tensor index -1).
    MissingInput(usize),
    /// A tensor's element type is not one this op accepts here.
    DType { tensor: String, expected: String, got: String },
    /// Shapes do not fit together.
    Shape(String),
    /// The op's options table is missing or of the wrong kind.
    Options(String),
    /// A value (index, axis, parameter) is out of range.
    Value(String),
    /// Valid for TFLite, not implemented here yet.
    Unsupported(String),
    /// The output shape depends on values computed at run time (a SLICE
    /// size from an earlier op, say). Refused in a model's main graph; in a
    /// WHILE/IF subgraph the interpreter then runs that subgraph eagerly.
    DynamicShape(String),
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::Arity { what, expected, got } => {
                write!(f, "expected {expected} {what}, got {got}")
            }
            OpError::MissingInput(i) => write!(f, "input {i} is required but absent"),
            OpError::DType { tensor, expected, got } => {
                write!(f, "{tensor} has type {got}, expected {expected}")
            }
            OpError::Shape(s) => write!(f, "shape error: {s}"),
            OpError::Options(s) => write!(f, "options: {s}"),
            OpError::Value(s) => write!(f, "{s}"),
            OpError::Unsupported(s) => write!(f, "not supported: {s}"),
            OpError::DynamicShape(s) => {
                write!(f, "not supported: {s}: the output shape would depend on computed values (dynamic shapes run only inside WHILE/IF subgraphs)")
            }
        }
    }
}

impl std::error::Error for OpError {}

/// Any error ferrolite reports.
#[derive(Debug)]
pub enum Error {
    /// The bytes are not a readable .tflite FlatBuffer (bad identifier,
    /// offsets or lengths out of range, invalid enum values...).
    Format { location: Location, message: String },
    /// The FlatBuffer reads fine but describes an invalid model (index out
    /// of range, inconsistent sizes, a cycle...).
    InvalidModel { location: Location, message: String },
    /// The resolver has no kernel for this operator.
    UnsupportedOp { subgraph: usize, node: usize, op: String, version: i32 },
    /// An operator rejected its inputs at prepare, or failed at eval.
    Op { location: Location, error: OpError },
    /// Misuse of the API: wrong index, wrong element type, wrong length.
    InvalidArgument(String),
    /// The call needs `allocate_tensors()` first.
    NotAllocated,
    /// Reading a model file failed.
    Io { path: String, error: std::io::Error },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Format { location, message } => {
                write!(f, "malformed model file: {location}: {message}")
            }
            Error::InvalidModel { location, message } => {
                write!(f, "invalid model: {location}: {message}")
            }
            Error::UnsupportedOp { subgraph, node, op, version } => write!(
                f,
                "subgraph {subgraph} operator {node}: operator {op} version {version} is not supported by this resolver"
            ),
            Error::Op { location, error } => write!(f, "{location}: {error}"),
            Error::InvalidArgument(s) => write!(f, "invalid argument: {s}"),
            Error::NotAllocated => write!(f, "tensors are not allocated: call allocate_tensors() first"),
            Error::Io { path, error } => write!(f, "cannot read {path}: {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { error, .. } => Some(error),
            Error::Op { error, .. } => Some(error),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
