//! The expression languages, parsed once and evaluated on state data: JSONPath paths,
//! payload templates, intrinsic functions, Choice rules, the JSONata adapter, and what they
//! read at run time (the Context object `$$`, workflow variables). Both `asl` (which parses
//! them while it validates a definition) and `exec` (which evaluates them) use this module;
//! it uses neither.

pub mod choice;
pub mod context;
pub mod intrinsic;
pub mod jsonata;
mod jsonata_fns;
pub mod path;
pub mod problem;
pub mod query;
pub mod size;
pub mod template;
pub mod timestamp;
pub mod vars;

use crate::value::Value;

use context::Context;
use vars::Vars;

/// What a compiled path, template, intrinsic or Choice rule can read at run time.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// The data the state is working on (`$`).
    pub input: &'a Value,
    /// The Context object (`$$`).
    pub context: &'a Context,
    /// Workflow variables (`$name`).
    pub vars: &'a Vars,
}

impl<'a> Env<'a> {
    /// The same context and variables over other data (`$` changes, `$$` does not).
    pub fn with_input(&self, input: &'a Value) -> Env<'a> {
        Env { input, ..*self }
    }

    /// The same data, context and variables as JSONata's `$states` scope.
    pub fn scope(&self) -> jsonata::Scope<'a> {
        jsonata::Scope {
            input: self.input,
            result: None,
            error_output: None,
            context: self.context,
            vars: self.vars,
        }
    }
}

/// A name for a value's type in error messages ("a string", "an array", ...).
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
