//! What the fuzz targets share: a document, a Context object and variables to evaluate
//! paths, templates and intrinsics against, so that parsed inputs are also run.

use stepstream::expr::context::Context;
use stepstream::expr::vars::Vars;
use stepstream::expr::Env;
use stepstream::json;
use stepstream::value::Value;

/// The data every expression target evaluates against: every JSON type, nested arrays
/// and objects, strings that look like numbers, JSON and timestamps.
pub fn document() -> Value {
    json!({
        "a": 1, "b": -2.5, "c": "text", "d": true, "e": null,
        "big": 9007199254740993u64, "neg": -9223372036854775808i64, "tiny": 1e-300, "huge": 1.7e308,
        "s": "a,b;;c", "json": "{\"k\":[1,2,{\"z\":null}]}", "b64": "aGVsbG8=",
        "ts": "2026-11-21T10:00:00.123Z", "empty": "", "uni": "héllo \u{1F600}",
        "arr": [1, 2, 3, "x", null, [4, 5], {"a": 6}],
        "nums": [3, 1, 2, 2.5, -7],
        "objs": [{"id": 1, "tag": "x", "price": 9.5}, {"id": 2, "tag": "y", "price": 20}, {"id": 3}],
        "nest": {"a": {"b": {"c": [{"d": [1, {"e": "deep"}]}]}}},
        "keys with space": {"x.y": 1, "[0]": 2, "'q'": 3},
        "emptyObj": {}, "emptyArr": []
    })
}

/// A Context object shaped like the one executions see.
pub fn context() -> Context {
    Context::from_value(json!({
        "Execution": {"Id": "arn:aws:states:local:000000000000:express:m:n:u", "Name": "n",
                      "Input": {"a": 1}, "StartTime": "2026-11-21T10:00:00.123Z"},
        "State": {"Name": "S", "EnteredTime": "2026-11-21T10:00:00.124Z", "RetryCount": 0},
        "StateMachine": {"Id": "arn:aws:states:local:000000000000:stateMachine:m", "Name": "m"},
        "Map": {"Item": {"Index": 2, "Value": {"k": "v"}}}
    }))
}

/// Variables `$x`, `$list` and `$obj` for paths and intrinsics that name one.
pub fn vars() -> Vars {
    let mut v = Vars::default();
    v.set("x".into(), json!(42));
    v.set("list".into(), json!([1, "two", {"three": 3}]));
    v.set("obj".into(), json!({"k": [true, false]}));
    v
}

/// The three parts an [`Env`] borrows, kept together so targets build them once.
pub struct Data {
    /// `$`.
    pub input: Value,
    /// `$$`.
    pub context: Context,
    /// `$name`.
    pub vars: Vars,
}

impl Data {
    /// The shared document, Context object and variables.
    pub fn new() -> Data {
        Data {
            input: document(),
            context: context(),
            vars: vars(),
        }
    }

    /// An environment over them.
    pub fn env(&self) -> Env<'_> {
        Env {
            input: &self.input,
            context: &self.context,
            vars: &self.vars,
        }
    }
}

impl Default for Data {
    fn default() -> Self {
        Data::new()
    }
}
