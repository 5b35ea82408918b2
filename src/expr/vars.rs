//! Workflow variables (`Assign` and `$name`), scoped as AWS scopes them.
//!
//! A Parallel branch or Map iteration sees the variables of its enclosing scope and can
//! add its own, but what it assigns never leaks out.

use std::sync::Arc;

use crate::value::{Map, Value};

/// The variables visible to one state: its own scope over a shared, read-only outer one.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    outer: Option<Arc<Vars>>,
    local: Map,
}

impl Vars {
    /// Looks a variable up, innermost scope first.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self.local.get(name) {
            Some(v) => Some(v),
            None => self.outer.as_deref().and_then(|o| o.get(name)),
        }
    }

    /// Sets a variable in the innermost scope.
    pub fn set(&mut self, name: crate::value::Str, value: Value) {
        self.local.insert(name, value);
    }

    /// A new inner scope over a shared outer one (a Parallel branch, a Map iteration).
    pub fn inner(outer: &Arc<Vars>) -> Vars {
        Vars {
            outer: Some(Arc::clone(outer)),
            local: Map::new(),
        }
    }

    /// The JSON size of the variables set in this scope (outer scopes are counted by the
    /// frames that own them); stops counting past `cap`.
    pub fn local_size(&self, cap: usize) -> usize {
        let mut n = 0;
        for (k, v) in &self.local {
            if n > cap {
                break;
            }
            n += k.len() + crate::expr::size::json_size(v, cap - n.min(cap));
        }
        n
    }

    /// The variables set in this scope, not those of outer scopes.
    pub fn local(&self) -> &Map {
        &self.local
    }

    /// True when no variable is set in any scope.
    pub fn is_empty(&self) -> bool {
        self.local.is_empty() && self.outer.as_deref().is_none_or(Vars::is_empty)
    }
}
