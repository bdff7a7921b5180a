//! Which operator implementation runs which node.
//!
//! Builtins are registered by code and version range; custom ops by name.
//! An app that wants a small binary builds its resolver from only the ops
//! its model uses (`OpResolver::new()` + `ops::register_*`), and the linker
//! drops the rest; `OpResolver::with_builtins()` registers everything.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use crate::model::{OperatorCode, CUSTOM_OPCODE};
use crate::op::Operator;

#[derive(Clone)]
pub(crate) struct Registration {
    pub op: Arc<dyn Operator>,
    /// Pure ops with constant inputs are evaluated once, at prepare.
    pub pure: bool,
}

/// Maps operator codes to implementations.
#[derive(Clone, Default)]
pub struct OpResolver {
    builtins: HashMap<i32, Vec<(RangeInclusive<i32>, Registration)>>,
    custom: HashMap<String, Registration>,
}

impl OpResolver {
    /// An empty resolver: register what your model needs.
    pub fn new() -> OpResolver {
        OpResolver::default()
    }

    /// A resolver with every builtin op ferrolite implements.
    pub fn with_builtins() -> OpResolver {
        let mut r = OpResolver::new();
        crate::ops::register_all(&mut r);
        r
    }

    /// Register a builtin op (by its `BuiltinOperator` number) for a range
    /// of op versions. A later registration for the same code and version
    /// takes precedence.
    pub fn add_builtin(&mut self, code: i32, versions: RangeInclusive<i32>, op: impl Operator + 'static) {
        self.builtins.entry(code).or_default().insert(0, (versions, Registration { op: Arc::new(op), pure: true }));
    }

    /// Register a custom op under the name the model's `custom_code` uses.
    pub fn add_custom(&mut self, name: &str, op: impl Operator + 'static) {
        self.custom.insert(name.to_string(), Registration { op: Arc::new(op), pure: false });
    }

    /// Mark a builtin as having effects beyond its outputs (random numbers,
    /// variables), so it is never folded at prepare.
    pub(crate) fn mark_impure(&mut self, code: i32) {
        if let Some(v) = self.builtins.get_mut(&code) {
            for (_, r) in v {
                r.pure = false;
            }
        }
    }

    pub(crate) fn find(&self, code: &OperatorCode) -> Option<Registration> {
        if code.builtin_code == CUSTOM_OPCODE {
            return self.custom.get(code.custom_code.as_deref()?).cloned();
        }
        let v = self.builtins.get(&code.builtin_code)?;
        v.iter().find(|(range, _)| range.contains(&code.version)).map(|(_, r)| r.clone())
    }

    /// The builtin codes registered (for `inspect` and tests).
    pub fn builtin_codes(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.builtins.keys().copied().collect();
        v.sort_unstable();
        v
    }
}
