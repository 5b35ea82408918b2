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
            // An empty outer scope (no variable anywhere, the usual JSONPath machine) is
            // not linked: lookups find nothing in it anyway, it never changes, and the
            // link cost a locked count increment and decrement per Map iteration.
            outer: (!outer.is_empty()).then(|| Arc::clone(outer)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inner_scope_sees_every_outer_variable_and_links_no_empty_scope() {
        let empty = Arc::new(Vars::default());
        let inner = Vars::inner(&empty);
        assert!(inner.outer.is_none() && inner.is_empty());

        let mut top = Vars::default();
        top.set("a".into(), Value::from(1));
        let middle = Arc::new(Vars::inner(&Arc::new(top)));
        // `middle` sets nothing itself but reaches `a`: it is linked, not skipped.
        let mut inner = Vars::inner(&middle);
        assert_eq!(inner.get("a"), Some(&Value::from(1)));
        inner.set("b".into(), Value::from(2));
        assert_eq!(inner.get("b"), Some(&Value::from(2)));
        assert_eq!(middle.get("b"), None);
    }
}
