//! Resource variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE) and the
//! "already ran" marks of CALL_ONCE.
//!
//! TFLite keeps both per interpreter, shared by all of its subgraphs: a
//! model's CALL_ONCE runs an initialisation subgraph that assigns the
//! variables the main subgraph then reads and updates, invoke after invoke.
//! So one [`Resources`] is made by a top-level interpreter and lent to
//! every subgraph interpreter below it (WHILE, IF, CALL_ONCE) and to the
//! signature runners it makes. `allocate_tensors()` and
//! `reset_variable_tensors()` leave it alone, as TFLite's do.
//!
//! A resource tensor holds the variable's id as an `i32` (what TFLite's
//! VAR_HANDLE writes); ids are handed out per `(container, shared_name)`.
//! A variable takes its type and shape from its first assignment, and keeps
//! them: ferrolite plans every tensor's size at `allocate_tensors()`, so a
//! later assignment of another type or shape is refused rather than
//! re-sizing the tensors that read it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::dtype::DataType;
use crate::error::OpError;

/// The variables and CALL_ONCE marks of one interpreter.
#[derive(Debug, Default)]
pub(crate) struct Resources {
    /// `(container, shared_name)` by id.
    names: Vec<(String, String)>,
    /// By id; `None` until first assigned.
    values: Vec<Option<Variable>>,
    /// Subgraphs a CALL_ONCE has run.
    initialized: HashSet<usize>,
}

#[derive(Debug)]
struct Variable {
    dtype: DataType,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// Shared between the interpreters of one model run.
pub(crate) type SharedResources = Arc<Mutex<Resources>>;

/// Lock the store. A panic while it was held (which no op does) left it as
/// it was after the last complete update, so poisoning is ignored.
pub(crate) fn lock(r: &Mutex<Resources>) -> MutexGuard<'_, Resources> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

impl Resources {
    /// The id of variable `(container, shared_name)`, made on first use.
    pub(crate) fn handle(&mut self, container: &str, shared_name: &str) -> Result<i32, OpError> {
        if let Some(id) = self.names.iter().position(|(c, s)| c == container && s == shared_name) {
            return Ok(id as i32);
        }
        let id = i32::try_from(self.names.len())
            .map_err(|_| OpError::Value("more resource variables than an int32 id can name".into()))?;
        self.names.push((container.to_string(), shared_name.to_string()));
        self.values.push(None);
        Ok(id)
    }

    fn index(&self, id: i32) -> Result<usize, OpError> {
        usize::try_from(id)
            .ok()
            .filter(|&i| i < self.names.len())
            .ok_or_else(|| OpError::Value(format!("resource id {id} names no variable (no VAR_HANDLE made it)")))
    }

    /// How messages name a variable.
    fn name(&self, i: usize) -> String {
        match &self.names[i] {
            (c, s) if c.is_empty() => format!("'{s}'"),
            (c, s) => format!("'{c}/{s}'"),
        }
    }

    /// Copy variable `id` into `out`, which must have its type and shape.
    pub(crate) fn read(&self, id: i32, dtype: DataType, shape: &[usize], out: &mut [u8]) -> Result<(), OpError> {
        let i = self.index(id)?;
        let v = self.values[i].as_ref().ok_or_else(|| {
            OpError::Value(format!("variable {} is read before any ASSIGN_VARIABLE gave it a value", self.name(i)))
        })?;
        if v.dtype != dtype || v.shape != shape {
            return Err(OpError::Shape(format!(
                "variable {} holds {} {:?}, the READ_VARIABLE output is {dtype} {shape:?}",
                self.name(i),
                v.dtype,
                v.shape
            )));
        }
        if out.len() != v.bytes.len() {
            return Err(OpError::Value(format!(
                "variable {} holds {} bytes, the output {}",
                self.name(i),
                v.bytes.len(),
                out.len()
            )));
        }
        out.copy_from_slice(&v.bytes);
        Ok(())
    }

    /// Set variable `id` to `bytes` of `dtype` and `shape`: its first
    /// assignment fixes its type and shape, later ones must keep them.
    pub(crate) fn assign(&mut self, id: i32, dtype: DataType, shape: &[usize], bytes: &[u8]) -> Result<(), OpError> {
        let i = self.index(id)?;
        match &mut self.values[i] {
            Some(v) if v.dtype == dtype && v.shape == shape && v.bytes.len() == bytes.len() => {
                v.bytes.copy_from_slice(bytes);
            }
            Some(v) => {
                let (was_dtype, was_shape) = (v.dtype, v.shape.clone());
                return Err(OpError::Shape(format!(
                    "variable {} holds {was_dtype} {was_shape:?}; assigning {dtype} {shape:?} would change it",
                    self.name(i)
                )));
            }
            slot @ None => *slot = Some(Variable { dtype, shape: shape.to_vec(), bytes: bytes.to_vec() }),
        }
        Ok(())
    }

    pub(crate) fn is_initialized(&self, subgraph: usize) -> bool {
        self.initialized.contains(&subgraph)
    }

    pub(crate) fn mark_initialized(&mut self, subgraph: usize) {
        self.initialized.insert(subgraph);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_per_container_and_name() {
        let mut r = Resources::default();
        let a = r.handle("", "acc").unwrap();
        let b = r.handle("c", "acc").unwrap();
        assert_ne!(a, b);
        assert_eq!(r.handle("", "acc").unwrap(), a);
    }

    #[test]
    fn first_assignment_fixes_type_and_shape() {
        let mut r = Resources::default();
        let id = r.handle("", "v").unwrap();
        let mut out = [0u8; 8];
        let e = r.read(id, DataType::Float32, &[2], &mut out).unwrap_err();
        assert!(e.to_string().contains("'v' is read before"), "{e}");
        r.assign(id, DataType::Float32, &[2], &[1; 8]).unwrap();
        r.read(id, DataType::Float32, &[2], &mut out).unwrap();
        assert_eq!(out, [1; 8]);
        r.assign(id, DataType::Float32, &[2], &[2; 8]).unwrap();
        assert!(r.assign(id, DataType::Float32, &[1, 2], &[2; 8]).is_err());
        assert!(r.assign(id, DataType::Int32, &[2], &[2; 8]).is_err());
        assert!(r.read(id, DataType::Float32, &[1], &mut out[..4]).is_err());
        assert!(r.read(7, DataType::Float32, &[2], &mut out).is_err());
        assert!(r.read(-1, DataType::Float32, &[2], &mut out).is_err());
    }
}
