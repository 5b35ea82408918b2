//! Choice rules (JSONPath dialect), compiled once into a tree of typed tests.
//!
//! [`compile`] checks a rule and converts everything that can be converted ahead of time:
//! paths are parsed, numbers become [`Number`]s, timestamps are parsed, a `StringMatches`
//! pattern is split into literal pieces. [`Condition::eval`] then only looks values up by
//! reference and compares them; it does not allocate unless it fails.
//!
//! Run-time semantics follow what AWS Step Functions was recorded doing:
//! - a `Variable` (or a `...Path` operand) that names nothing fails the state with
//!   `States.Runtime`, except under `IsPresent`;
//! - a value of the wrong type for the operator makes the comparison false, never an
//!   error (`NumericEquals` on `"42"`, `TimestampEquals` on `"HelloWorld"`);
//! - `And` and `Or` stop at the first rule that decides them, so an `IsPresent` guard
//!   ahead of a comparison protects it.

use std::cmp::Ordering;

use crate::value::Value;

use super::path::Path;
use super::problem::{pointer_join, Problem};
use super::timestamp::{self, Timestamp};
use super::{kind_of, Env};
use crate::error::WorkflowError;

/// A compiled Choice condition.
#[derive(Debug, Clone)]
pub enum Condition {
    /// True when every rule is; stops at the first false one.
    And(Vec<Condition>),
    /// True when any rule is; stops at the first true one.
    Or(Vec<Condition>),
    /// The opposite of the rule.
    Not(Box<Condition>),
    /// `IsPresent`: whether `variable` names a value, compared with `expected`.
    IsPresent {
        /// The path that may or may not be there.
        variable: Path,
        /// The rule's `true` or `false`.
        expected: bool,
        /// Where the lookup is kept when other rules of the state name the same path.
        shared: Shared,
    },
    /// A test of the value at `variable`, which must be there.
    Test {
        /// The rule's `Variable`.
        variable: Path,
        /// What is checked about its value.
        test: Test,
        /// As for `IsPresent`.
        shared: Shared,
    },
}

/// The slot in [`Lookups`] of a `Variable` that several rules of one Choice state name
/// (`$.loop.counter` four times in choice-heavy's), or none: a path named once is looked
/// up where it is tested, with nothing kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shared(u8);

impl Shared {
    const NONE: Shared = Shared(u8::MAX);
}

/// How many paths of one Choice state share their lookups; the others are looked up at
/// each test (a state naming more distinct repeated paths is rare, and correct either way).
const SHARED_SLOTS: usize = 16;

/// The values a Choice state's shared paths named, looked up at the first rule that needs
/// each and read from here by the rules after it: nothing a rule reads changes while the
/// state's rules are tried.
pub struct Lookups<'v> {
    known: u16,
    found: [Option<&'v Value>; SHARED_SLOTS],
}

impl<'v> Lookups<'v> {
    /// Nothing looked up yet.
    #[inline]
    pub fn new() -> Lookups<'v> {
        Lookups {
            known: 0,
            found: [None; SHARED_SLOTS],
        }
    }

    /// The value `variable` names, looked up once per state for a shared path.
    #[inline(always)]
    fn get(&mut self, variable: &Path, shared: Shared, env: &Env<'v>) -> Option<&'v Value> {
        let slot = usize::from(shared.0);
        if slot >= SHARED_SLOTS {
            return variable.get(env);
        }
        let bit = 1u16 << slot;
        if self.known & bit == 0 {
            self.found[slot] = variable.get(env);
            self.known |= bit;
        }
        self.found[slot]
    }
}

impl Default for Lookups<'_> {
    fn default() -> Self {
        Lookups::new()
    }
}

/// Gives the `Variable`s that more than one of a Choice state's rules name a shared slot
/// each (up to [`SHARED_SLOTS`]), so [`Condition::eval_sharing`] looks each up once.
pub fn share_lookups<'c>(rules: impl IntoIterator<Item = &'c mut Condition>) {
    fn visit<'c>(c: &'c mut Condition, out: &mut Vec<(&'c Path, &'c mut Shared)>) {
        match c {
            Condition::And(rules) | Condition::Or(rules) => {
                rules.iter_mut().for_each(|r| visit(r, out))
            }
            Condition::Not(rule) => visit(rule, out),
            Condition::IsPresent {
                variable, shared, ..
            }
            | Condition::Test {
                variable, shared, ..
            } => out.push((variable, shared)),
        }
    }
    let mut vars = Vec::new();
    for rule in rules {
        visit(rule, &mut vars);
    }
    // Counted by a map, not by comparing every pair: a definition may hold a Choice of
    // thousands of rules, and this runs whenever one is read (the API's included).
    let mut uses: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (p, _) in &vars {
        *uses.entry(p.text()).or_default() += 1;
    }
    let mut slots: Vec<&str> = Vec::new();
    for (p, shared) in vars {
        let text = p.text();
        if uses[text] < 2 {
            continue;
        }
        let slot = match slots.iter().position(|t| *t == text) {
            Some(at) => at,
            None if slots.len() < SHARED_SLOTS => {
                slots.push(text);
                slots.len() - 1
            }
            None => continue,
        };
        *shared = Shared(slot as u8);
    }
}

/// What a comparison checks about the value its `Variable` names.
#[derive(Debug, Clone)]
pub enum Test {
    /// `IsBoolean`, `IsNull`, `IsNumeric`, `IsString`, `IsTimestamp`.
    Is {
        /// The kind of value asked about.
        kind: Kind,
        /// The rule's `true` or `false`.
        expected: bool,
    },
    /// `BooleanEquals` / `BooleanEqualsPath`.
    BooleanEquals(Operand<bool>),
    /// `Numeric*` / `Numeric*Path`.
    Numeric(Cmp, Operand<Number>),
    /// `String*` / `String*Path` (except `StringMatches`).
    String(Cmp, Operand<String>),
    /// `StringMatches`.
    StringMatches(Pattern),
    /// `Timestamp*` / `Timestamp*Path`.
    Timestamp(Cmp, Operand<Timestamp>),
}

/// The kinds of value the `Is*` operators ask about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `IsBoolean`.
    Boolean,
    /// `IsNull`.
    Null,
    /// `IsNumeric`.
    Numeric,
    /// `IsString`.
    String,
    /// `IsTimestamp`: a string that [`timestamp::parse`] accepts.
    Timestamp,
}

/// The right-hand side of a comparison: a constant, or a path for the `...Path` forms.
#[derive(Debug, Clone)]
pub enum Operand<T> {
    /// A constant from the definition, already converted.
    Const(T),
    /// A path looked up at run time (`NumericEqualsPath` and the like).
    Path(Path),
}

/// How a comparison relates the variable to the operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `...Equals`.
    Equals,
    /// `...GreaterThan`.
    GreaterThan,
    /// `...GreaterThanEquals`.
    GreaterThanEquals,
    /// `...LessThan`.
    LessThan,
    /// `...LessThanEquals`.
    LessThanEquals,
}

/// A JSON number, kept exact when it is an integer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// Any integer JSON can hold without a fraction (the whole i64 and u64 ranges).
    Int(i128),
    /// Everything else.
    Float(f64),
}

/// A `StringMatches` pattern split at its unescaped `*`s into literal pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// Literal text the string starts with (all of it when there is no `*`).
    prefix: String,
    /// Literal pieces between `*`s, found in order, leftmost first.
    middle: Vec<String>,
    /// Literal text the string ends with.
    suffix: String,
    /// False when the pattern has no unescaped `*`: then it is plain equality.
    wildcard: bool,
}

/// What an operator expects as its operand.
#[derive(Debug, Clone, Copy)]
enum Op {
    IsPresent,
    Is(Kind),
    Boolean,
    Numeric(Cmp),
    String(Cmp),
    Matches,
    Timestamp(Cmp),
}

/// Every comparison operator: its name, its operand, and whether the operand is a path.
const OPERATORS: &[(&str, Op, bool)] = &[
    ("BooleanEquals", Op::Boolean, false),
    ("BooleanEqualsPath", Op::Boolean, true),
    ("IsBoolean", Op::Is(Kind::Boolean), false),
    ("IsNull", Op::Is(Kind::Null), false),
    ("IsNumeric", Op::Is(Kind::Numeric), false),
    ("IsPresent", Op::IsPresent, false),
    ("IsString", Op::Is(Kind::String), false),
    ("IsTimestamp", Op::Is(Kind::Timestamp), false),
    ("NumericEquals", Op::Numeric(Cmp::Equals), false),
    ("NumericEqualsPath", Op::Numeric(Cmp::Equals), true),
    ("NumericGreaterThan", Op::Numeric(Cmp::GreaterThan), false),
    (
        "NumericGreaterThanPath",
        Op::Numeric(Cmp::GreaterThan),
        true,
    ),
    (
        "NumericGreaterThanEquals",
        Op::Numeric(Cmp::GreaterThanEquals),
        false,
    ),
    (
        "NumericGreaterThanEqualsPath",
        Op::Numeric(Cmp::GreaterThanEquals),
        true,
    ),
    ("NumericLessThan", Op::Numeric(Cmp::LessThan), false),
    ("NumericLessThanPath", Op::Numeric(Cmp::LessThan), true),
    (
        "NumericLessThanEquals",
        Op::Numeric(Cmp::LessThanEquals),
        false,
    ),
    (
        "NumericLessThanEqualsPath",
        Op::Numeric(Cmp::LessThanEquals),
        true,
    ),
    ("StringEquals", Op::String(Cmp::Equals), false),
    ("StringEqualsPath", Op::String(Cmp::Equals), true),
    ("StringGreaterThan", Op::String(Cmp::GreaterThan), false),
    ("StringGreaterThanPath", Op::String(Cmp::GreaterThan), true),
    (
        "StringGreaterThanEquals",
        Op::String(Cmp::GreaterThanEquals),
        false,
    ),
    (
        "StringGreaterThanEqualsPath",
        Op::String(Cmp::GreaterThanEquals),
        true,
    ),
    ("StringLessThan", Op::String(Cmp::LessThan), false),
    ("StringLessThanPath", Op::String(Cmp::LessThan), true),
    (
        "StringLessThanEquals",
        Op::String(Cmp::LessThanEquals),
        false,
    ),
    (
        "StringLessThanEqualsPath",
        Op::String(Cmp::LessThanEquals),
        true,
    ),
    ("StringMatches", Op::Matches, false),
    ("TimestampEquals", Op::Timestamp(Cmp::Equals), false),
    ("TimestampEqualsPath", Op::Timestamp(Cmp::Equals), true),
    (
        "TimestampGreaterThan",
        Op::Timestamp(Cmp::GreaterThan),
        false,
    ),
    (
        "TimestampGreaterThanPath",
        Op::Timestamp(Cmp::GreaterThan),
        true,
    ),
    (
        "TimestampGreaterThanEquals",
        Op::Timestamp(Cmp::GreaterThanEquals),
        false,
    ),
    (
        "TimestampGreaterThanEqualsPath",
        Op::Timestamp(Cmp::GreaterThanEquals),
        true,
    ),
    ("TimestampLessThan", Op::Timestamp(Cmp::LessThan), false),
    ("TimestampLessThanPath", Op::Timestamp(Cmp::LessThan), true),
    (
        "TimestampLessThanEquals",
        Op::Timestamp(Cmp::LessThanEquals),
        false,
    ),
    (
        "TimestampLessThanEqualsPath",
        Op::Timestamp(Cmp::LessThanEquals),
        true,
    ),
];

fn operator(name: &str) -> Option<(Op, bool)> {
    OPERATORS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, op, path)| (op, path))
}

/// Compiles a rule object. `top_level` rules carry `Next` (and may carry `Assign`,
/// `Output`, `Comment`), which are left to the caller; nested rules (inside `And`, `Or`,
/// `Not`) must not have them. Every problem is pushed with a JSON pointer under
/// `pointer`; the result is `None` if there was any.
pub fn compile(
    rule: &Value,
    pointer: &str,
    top_level: bool,
    problems: &mut Vec<Problem>,
) -> Option<Condition> {
    let before = problems.len();
    let condition = compile_rule(rule, pointer, top_level, problems);
    if problems.len() > before {
        None
    } else {
        condition
    }
}

fn compile_rule(
    rule: &Value,
    pointer: &str,
    top_level: bool,
    problems: &mut Vec<Problem>,
) -> Option<Condition> {
    let Value::Object(fields) = rule else {
        problems.push(Problem::new(
            pointer,
            format!("a Choice rule must be an object, found {}", kind_of(rule)),
        ));
        return None;
    };

    let mut combinators: Vec<(&str, &Value)> = Vec::new();
    let mut comparisons: Vec<(&str, Op, bool, &Value)> = Vec::new();
    let mut variable: Option<&Value> = None;
    for (key, value) in fields {
        let at = || pointer_join(pointer, key);
        match key.as_str() {
            "And" | "Or" | "Not" => combinators.push((key, value)),
            "Variable" => variable = Some(value),
            "Comment" => {
                if !value.is_string() {
                    problems.push(Problem::new(at(), "Comment must be a string"));
                }
            }
            "Next" | "Assign" | "Output" if top_level => {}
            "Next" | "Assign" | "Output" => problems.push(Problem::new(
                at(),
                format!("{key} belongs on a rule directly in Choices, not on one inside And, Or or Not"),
            )),
            "Condition" => problems.push(Problem::new(
                at(),
                "Condition is for JSONata rules; a JSONPath rule uses Variable and a comparison operator such as StringEquals",
            )),
            _ => match operator(key) {
                Some((op, path)) => comparisons.push((key, op, path, value)),
                None => problems.push(Problem::new(at(), unknown_field(key))),
            },
        }
    }

    if let Some(&(name, value)) = combinators.first() {
        if combinators.len() > 1 {
            let names: Vec<&str> = combinators.iter().map(|(n, _)| *n).collect();
            problems.push(Problem::new(
                pointer,
                format!(
                    "a rule has one of And, Or or Not, not several (found {})",
                    names.join(", ")
                ),
            ));
        }
        if variable.is_some() {
            problems.push(Problem::new(
                pointer_join(pointer, "Variable"),
                format!("Variable does not belong on a rule that uses {name}; put it on the rules inside"),
            ));
        }
        for (op, ..) in &comparisons {
            problems.push(Problem::new(
                pointer_join(pointer, op),
                format!(
                    "{op} does not belong on a rule that uses {name}; put it on the rules inside"
                ),
            ));
        }
        return compile_combinator(name, value, &pointer_join(pointer, name), problems);
    }

    let Some(&(name, op, is_path, operand)) = comparisons.first() else {
        problems.push(Problem::new(
            pointer,
            "a Choice rule needs Variable and a comparison operator (such as StringEquals or IsPresent), or And, Or or Not",
        ));
        return None;
    };
    if comparisons.len() > 1 {
        let names: Vec<&str> = comparisons.iter().map(|c| c.0).collect();
        problems.push(Problem::new(
            pointer,
            format!(
                "a Choice rule has exactly one comparison operator (found {})",
                names.join(", ")
            ),
        ));
    }
    let variable = match variable {
        Some(v) => compile_path(v, &pointer_join(pointer, "Variable"), "Variable", problems),
        None => {
            problems.push(Problem::new(
                pointer,
                format!(
                    "{name} needs a Variable: the path of the value to test, such as \"$.status\""
                ),
            ));
            None
        }
    };
    let test = compile_test(
        name,
        op,
        is_path,
        operand,
        &pointer_join(pointer, name),
        problems,
    );
    match (variable, test) {
        (Some(variable), Some(Compiled::IsPresent(expected))) => Some(Condition::IsPresent {
            variable,
            expected,
            shared: Shared::NONE,
        }),
        (Some(variable), Some(Compiled::Test(test))) => Some(Condition::Test {
            variable,
            test,
            shared: Shared::NONE,
        }),
        _ => None,
    }
}

fn compile_combinator(
    name: &str,
    value: &Value,
    pointer: &str,
    problems: &mut Vec<Problem>,
) -> Option<Condition> {
    if name == "Not" {
        if !value.is_object() {
            problems.push(Problem::new(
                pointer,
                format!(
                    "Not takes one Choice rule (an object), found {}",
                    kind_of(value)
                ),
            ));
            return None;
        }
        return compile_rule(value, pointer, false, problems).map(|c| Condition::Not(Box::new(c)));
    }
    let rules = match value {
        Value::Array(rules) if !rules.is_empty() => rules,
        Value::Array(_) => {
            problems.push(Problem::new(
                pointer,
                format!("{name} needs at least one Choice rule"),
            ));
            return None;
        }
        other => {
            problems.push(Problem::new(
                pointer,
                format!(
                    "{name} takes a non-empty array of Choice rules, found {}",
                    kind_of(other)
                ),
            ));
            return None;
        }
    };
    // Compile every rule even after a failure, so that all problems are reported.
    let compiled: Vec<Option<Condition>> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| compile_rule(r, &pointer_join(pointer, &i.to_string()), false, problems))
        .collect();
    let rules: Vec<Condition> = compiled.into_iter().collect::<Option<_>>()?;
    Some(if name == "And" {
        Condition::And(rules)
    } else {
        Condition::Or(rules)
    })
}

/// A compiled operator: `IsPresent` is its own condition because it is the one test
/// that runs on a missing value.
enum Compiled {
    IsPresent(bool),
    Test(Test),
}

fn compile_test(
    name: &str,
    op: Op,
    is_path: bool,
    operand: &Value,
    pointer: &str,
    problems: &mut Vec<Problem>,
) -> Option<Compiled> {
    if is_path {
        let path = compile_path(operand, pointer, name, problems)?;
        return Some(Compiled::Test(match op {
            Op::Boolean => Test::BooleanEquals(Operand::Path(path)),
            Op::Numeric(cmp) => Test::Numeric(cmp, Operand::Path(path)),
            Op::String(cmp) => Test::String(cmp, Operand::Path(path)),
            Op::Timestamp(cmp) => Test::Timestamp(cmp, Operand::Path(path)),
            Op::IsPresent | Op::Is(_) | Op::Matches => {
                unreachable!("OPERATORS lists no path form of {name}")
            }
        }));
    }
    let mut wrong = |expected: &str| {
        problems.push(Problem::new(
            pointer,
            format!("{name} takes {expected}, found {}", describe(operand)),
        ));
        None
    };
    let test = match op {
        Op::IsPresent => {
            return match operand {
                Value::Bool(b) => Some(Compiled::IsPresent(*b)),
                _ => wrong("true or false"),
            }
        }
        Op::Is(kind) => match operand {
            Value::Bool(b) => Test::Is {
                kind,
                expected: *b,
            },
            _ => return wrong("true or false"),
        },
        Op::Boolean => match operand {
            Value::Bool(b) => Test::BooleanEquals(Operand::Const(*b)),
            _ => return wrong("true or false"),
        },
        Op::Numeric(cmp) => match operand {
            Value::Number(n) => Test::Numeric(cmp, Operand::Const(Number::of(n))),
            _ => return wrong("a number"),
        },
        Op::String(cmp) => match operand {
            Value::String(s) => Test::String(cmp, Operand::Const(s.to_string())),
            _ => return wrong("a string"),
        },
        Op::Matches => match operand {
            Value::String(s) => Test::StringMatches(Pattern::new(s)),
            _ => return wrong("a string pattern"),
        },
        Op::Timestamp(cmp) => match operand.as_str().and_then(timestamp::parse) {
            Some(t) => Test::Timestamp(cmp, Operand::Const(t)),
            None => {
                return wrong(
                    "an RFC 3339 timestamp with an uppercase T and Z or an offset, such as \"2016-03-14T01:59:00Z\"",
                )
            }
        },
    };
    Some(Compiled::Test(test))
}

/// Parses `Variable` or a `...Path` operand, which AWS requires to be a reference path.
fn compile_path(
    value: &Value,
    pointer: &str,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<Path> {
    let Some(text) = value.as_str() else {
        problems.push(Problem::new(
            pointer,
            format!(
                "{field} takes a path such as \"$.status\", found {}",
                describe(value)
            ),
        ));
        return None;
    };
    match Path::parse(text) {
        Ok(path) if path.is_reference() => Some(path),
        Ok(_) => {
            problems.push(Problem::new(
                pointer,
                format!(
                    "{field} must be a reference path naming one value (names and indexes only, like \"$.items[0].id\"), not {text:?}"
                ),
            ));
            None
        }
        Err(e) => {
            problems.push(Problem::new(pointer, e.to_string()));
            None
        }
    }
}

fn unknown_field(key: &str) -> String {
    // A near miss is most likely a typo or a wrong case: name the field that was meant.
    let close = OPERATORS
        .iter()
        .map(|(n, _, _)| *n)
        .chain(["And", "Or", "Not", "Variable", "Next", "Comment"])
        .map(|n| {
            (
                edit_distance(&key.to_ascii_lowercase(), &n.to_ascii_lowercase()),
                n,
            )
        })
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d);
    match close {
        Some((_, n)) => format!("unknown field {key:?} in a Choice rule; did you mean {n:?}?"),
        None => format!(
            "unknown field {key:?} in a Choice rule (expected Variable with a comparison operator, And, Or, Not, Next or Comment)"
        ),
    }
}

/// Levenshtein distance, for suggestions only.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur.push(substitute.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A value for a problem message: short scalars as written, containers by kind.
fn describe(v: &Value) -> String {
    match v {
        Value::Array(_) | Value::Object(_) => kind_of(v).to_string(),
        Value::String(s) if s.chars().count() > 60 => "a long string".to_string(),
        _ => format!("{} {v}", kind_of(v)),
    }
}

impl Condition {
    /// Evaluates against the state's input (and the Context object and variables, via `env`).
    pub fn eval(&self, env: &Env) -> Result<bool, WorkflowError> {
        self.eval_sharing(env, &mut Lookups::new())
    }

    /// [`Self::eval`] for one of a Choice state's rules, with the lookups its rules share.
    #[inline]
    pub fn eval_sharing<'v>(
        &self,
        env: &Env<'v>,
        lookups: &mut Lookups<'v>,
    ) -> Result<bool, WorkflowError> {
        match self.holds(env, lookups) {
            Some(b) => Ok(b),
            None => self.miss_in(env).map_err(missing),
        }
    }

    /// [`Self::eval`] with a miss as `None`: one byte comes back in a register, where a
    /// result that named the path went through memory at every rule of a Choice
    /// (choice-heavy evaluates ~230 per execution). Which path missed is found again by
    /// [`Self::miss_in`], only when one did.
    fn holds<'v>(&self, env: &Env<'v>, lookups: &mut Lookups<'v>) -> Option<bool> {
        match self {
            Condition::And(rules) => {
                for rule in rules {
                    if !rule.holds(env, lookups)? {
                        return Some(false);
                    }
                }
                Some(true)
            }
            Condition::Or(rules) => {
                for rule in rules {
                    if rule.holds(env, lookups)? {
                        return Some(true);
                    }
                }
                Some(false)
            }
            Condition::Not(rule) => Some(!rule.holds(env, lookups)?),
            Condition::IsPresent {
                variable,
                expected,
                shared,
            } => Some(lookups.get(variable, *shared, env).is_some() == *expected),
            Condition::Test {
                variable,
                test,
                shared,
            } => test.eval(lookups.get(variable, *shared, env)?, env),
        }
    }

    /// [`Self::holds`] again, in the same order (nothing it reads has changed), a miss
    /// reported as the path that missed: the first path that names nothing.
    #[cold]
    fn miss_in<'p>(&'p self, env: &Env) -> Result<bool, &'p Path> {
        let decided = |c: &'p Condition| c.miss_in(env);
        match self {
            Condition::And(rules) => {
                for rule in rules {
                    if !decided(rule)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Or(rules) => {
                for rule in rules {
                    if decided(rule)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(rule) => Ok(!decided(rule)?),
            Condition::IsPresent { .. } => {
                Ok(self.holds(env, &mut Lookups::new()).unwrap_or(false))
            }
            Condition::Test { variable, test, .. } => {
                let v = variable.get(env).ok_or(variable)?;
                // Given up on with its variable there: its operand path missed.
                test.eval(v, env)
                    .ok_or_else(|| test.operand_path().unwrap_or(variable))
            }
        }
    }
}

impl Test {
    /// Whether `v` passes; `None` when the operand's path names nothing.
    fn eval(&self, v: &Value, env: &Env) -> Option<bool> {
        // The operand path is looked up before types are compared: AWS fails on a
        // missing path whatever the variable holds.
        Some(match self {
            Test::Is { kind, expected } => kind.describes(v) == *expected,
            Test::BooleanEquals(operand) => {
                let rhs = match operand {
                    Operand::Const(b) => Some(*b),
                    Operand::Path(p) => p.get(env)?.as_bool(),
                };
                v.as_bool().zip(rhs).is_some_and(|(a, b)| a == b)
            }
            Test::Numeric(cmp, operand) => {
                let rhs = match operand {
                    Operand::Const(n) => Some(*n),
                    Operand::Path(p) => p.get(env)?.as_number().map(Number::of),
                };
                let lhs = v.as_number().map(Number::of);
                lhs.zip(rhs)
                    .and_then(|(a, b)| a.compare(b))
                    .is_some_and(|o| cmp.holds(o))
            }
            Test::String(cmp, operand) => {
                let rhs = match operand {
                    Operand::Const(s) => Some(s.as_str()),
                    Operand::Path(p) => p.get(env)?.as_str(),
                };
                v.as_str()
                    .zip(rhs)
                    .is_some_and(|(a, b)| cmp.holds(compare_strings(a, b)))
            }
            Test::StringMatches(pattern) => v.as_str().is_some_and(|s| pattern.matches(s)),
            Test::Timestamp(cmp, operand) => {
                let rhs = match operand {
                    Operand::Const(t) => Some(*t),
                    Operand::Path(p) => p.get(env)?.as_str().and_then(timestamp::parse),
                };
                let lhs = v.as_str().and_then(timestamp::parse);
                lhs.zip(rhs).is_some_and(|(a, b)| cmp.holds(a.cmp(&b)))
            }
        })
    }

    /// The path of a `...Path` operand, if this test has one.
    fn operand_path(&self) -> Option<&Path> {
        match self {
            Test::BooleanEquals(Operand::Path(p))
            | Test::Numeric(_, Operand::Path(p))
            | Test::String(_, Operand::Path(p))
            | Test::Timestamp(_, Operand::Path(p)) => Some(p),
            _ => None,
        }
    }
}

/// The error AWS raises for a condition's path that names nothing.
#[cold]
fn missing(path: &Path) -> WorkflowError {
    WorkflowError::runtime(format!(
        "Invalid path '{}': The choice state's condition path references an invalid value.",
        path.text()
    ))
}

/// Orders strings by UTF-16 code units, as AWS's (Java) string comparison does; this
/// differs from Rust's code point order only between U+E000..U+FFFF and astral characters.
fn compare_strings(a: &str, b: &str) -> Ordering {
    if a.is_ascii() || b.is_ascii() {
        // One side has no surrogate pairs, so the first difference decides the same way.
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

impl Kind {
    fn describes(self, v: &Value) -> bool {
        match self {
            Kind::Boolean => v.is_boolean(),
            Kind::Null => v.is_null(),
            Kind::Numeric => v.is_number(),
            Kind::String => v.is_string(),
            Kind::Timestamp => v.as_str().and_then(timestamp::parse).is_some(),
        }
    }
}

impl Cmp {
    fn holds(self, o: Ordering) -> bool {
        match self {
            Cmp::Equals => o == Ordering::Equal,
            Cmp::GreaterThan => o == Ordering::Greater,
            Cmp::GreaterThanEquals => o != Ordering::Less,
            Cmp::LessThan => o == Ordering::Less,
            Cmp::LessThanEquals => o != Ordering::Greater,
        }
    }
}

impl Number {
    /// Converts a JSON number, keeping integers exact.
    pub fn of(n: &serde_json::Number) -> Number {
        if let Some(i) = n.as_i64() {
            Number::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Number::Int(i128::from(u))
        } else {
            Number::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// Compares by value, so `1` equals `1.0`; integers beyond 2^53 stay exact.
    pub fn compare(self, other: Number) -> Option<Ordering> {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
            (Number::Float(a), Number::Float(b)) => a.partial_cmp(&b),
            (Number::Int(a), Number::Float(b)) => int_cmp_float(a, b),
            (Number::Float(a), Number::Int(b)) => int_cmp_float(b, a).map(Ordering::reverse),
        }
    }
}

fn int_cmp_float(a: i128, b: f64) -> Option<Ordering> {
    // An integral float within i128 compares exactly as an integer. A float with a
    // fraction is below 2^53 in size, where rounding `a` to f64 cannot cross it.
    if b.fract() == 0.0 && b.abs() < 1e38 {
        Some(a.cmp(&(b as i128)))
    } else {
        (a as f64).partial_cmp(&b)
    }
}

impl Pattern {
    /// Splits a pattern at unescaped `*`. `\*` is a literal star and `\\` a literal
    /// backslash; any other backslash is kept as written, since AWS gives no other
    /// character a special meaning.
    pub fn new(pattern: &str) -> Pattern {
        let mut pieces = vec![String::new()];
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            let piece = pieces.last_mut().expect("pieces starts non-empty");
            match c {
                '*' => pieces.push(String::new()),
                '\\' => match chars.peek() {
                    Some(&e @ ('*' | '\\')) => {
                        chars.next();
                        piece.push(e);
                    }
                    _ => piece.push('\\'),
                },
                _ => piece.push(c),
            }
        }
        let wildcard = pieces.len() > 1;
        let suffix = if wildcard {
            pieces.pop().expect("at least two pieces")
        } else {
            String::new()
        };
        let mut rest = pieces.into_iter();
        let prefix = rest.next().expect("at least one piece");
        Pattern {
            prefix,
            // Empty pieces come from `**`, which matches what `*` does.
            middle: rest.filter(|p| !p.is_empty()).collect(),
            suffix,
            wildcard,
        }
    }

    /// Whether `s` matches the whole pattern.
    pub fn matches(&self, s: &str) -> bool {
        let (b, prefix, suffix) = (s.as_bytes(), self.prefix.as_bytes(), self.suffix.as_bytes());
        if !self.wildcard {
            return b.len() == prefix.len() && short_eq(b, prefix);
        }
        if b.len() < prefix.len() + suffix.len()
            || !short_eq(&b[..prefix.len()], prefix)
            || !short_eq(&b[b.len() - suffix.len()..], suffix)
        {
            return false;
        }
        // Both cuts fall on char boundaries: they end a prefix and start a suffix of `s`.
        let mut rest = &s[self.prefix.len()..s.len() - self.suffix.len()];
        // Taking each piece at its leftmost match leaves the most room for the next,
        // so this greedy scan finds a match whenever one exists.
        for piece in &self.middle {
            match rest.find(piece.as_str()) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

/// Equality of two slices of the same length. Patterns' literal ends are short, and for
/// them `==` on slices is a `memcmp` call (6 % of the choice-heavy workload); a byte loop
/// is inlined.
#[inline]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    if a.len() <= 24 {
        a.iter().zip(b).all(|(x, y)| x == y)
    } else {
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::vars::Vars;
    use crate::json;

    fn compiled(rule: Value) -> Condition {
        let mut problems = Vec::new();
        let c = compile(&rule, "/States/Check/Choices/0", true, &mut problems);
        assert!(problems.is_empty(), "unexpected problems: {problems:?}");
        c.expect("compiled without problems")
    }

    fn problems(rule: Value) -> Vec<Problem> {
        let mut problems = Vec::new();
        let c = compile(&rule, "/States/Check/Choices/0", true, &mut problems);
        assert!(c.is_none(), "a rule with problems must not compile");
        assert!(!problems.is_empty(), "expected problems for {rule}");
        problems
    }

    fn eval(rule: Value, input: Value) -> Result<bool, WorkflowError> {
        let vars = Vars::default();
        let context = json!({"Execution": {"Name": "exec-1"}});
        let env = Env {
            input: &input,
            context: &crate::expr::context::Context::from_value(context.clone()),
            vars: &vars,
        };
        compiled(rule).eval(&env)
    }

    fn test(rule: Value, input: Value) -> bool {
        eval(rule, input).expect("evaluates without error")
    }

    fn matches(pattern: &str, s: &str) -> bool {
        test(
            json!({"Variable": "$.s", "StringMatches": pattern, "Next": "X"}),
            json!({ "s": s }),
        )
    }

    /// The slots `share_lookups` gives, rule by rule, in the order the rules name paths.
    fn slots_of(rules: &mut [Condition]) -> Vec<Option<u8>> {
        share_lookups(rules.iter_mut());
        fn visit(c: &Condition, out: &mut Vec<Option<u8>>) {
            match c {
                Condition::And(rs) | Condition::Or(rs) => rs.iter().for_each(|r| visit(r, out)),
                Condition::Not(r) => visit(r, out),
                Condition::IsPresent { shared, .. } | Condition::Test { shared, .. } => {
                    out.push((*shared != Shared::NONE).then_some(shared.0))
                }
            }
        }
        let mut out = Vec::new();
        rules.iter().for_each(|r| visit(r, &mut out));
        out
    }

    #[test]
    fn only_paths_named_by_several_rules_share_a_lookup() {
        let mut rules = vec![
            compiled(json!({"And": [
                {"Variable": "$.n", "NumericGreaterThan": 1},
                {"Variable": "$.s", "StringEquals": "a"}
            ], "Next": "X"})),
            compiled(json!({"Variable": "$.t", "IsPresent": true, "Next": "X"})),
            compiled(json!({"Not": {"Variable": "$.n", "NumericLessThan": 0}, "Next": "X"})),
            compiled(json!({"Variable": "$.t", "IsString": true, "Next": "X"})),
        ];
        assert_eq!(
            slots_of(&mut rules),
            [Some(0), None, Some(1), Some(0), Some(1)]
        );
    }

    #[test]
    fn only_the_first_sixteen_repeated_paths_get_a_slot() {
        let mut rules: Vec<Condition> = (0..17)
            .flat_map(|i| {
                let rule = json!({"Variable": format!("$.v{i}"), "IsPresent": true, "Next": "X"});
                [compiled(rule.clone()), compiled(rule)]
            })
            .collect();
        let slots = slots_of(&mut rules);
        assert_eq!(slots[0], Some(0));
        assert_eq!(slots[31], Some(15));
        assert_eq!(slots[32..], [None, None]);
    }

    #[test]
    fn shared_lookups_decide_as_separate_ones_and_name_the_same_miss() {
        let rules = || {
            vec![
                compiled(json!({"And": [
                    {"Variable": "$.n", "IsPresent": true},
                    {"Variable": "$.n", "NumericGreaterThan": 5}
                ], "Next": "X"})),
                compiled(json!({"Variable": "$.n", "NumericLessThan": 3, "Next": "X"})),
                compiled(json!({"Variable": "$.n", "NumericEquals": 4, "Next": "X"})),
            ]
        };
        let vars = Vars::default();
        let context = crate::expr::context::Context::from_value(json!({}));
        // Which rule holds first, or the error, with and without shared lookups.
        let first = |rules: &[Condition], input: &Value, share: bool| {
            let env = Env {
                input,
                context: &context,
                vars: &vars,
            };
            let mut lookups = Lookups::new();
            for (i, r) in rules.iter().enumerate() {
                let held = if share {
                    r.eval_sharing(&env, &mut lookups)
                } else {
                    r.eval(&env)
                };
                match held {
                    Ok(true) => return Ok(Some(i)),
                    Ok(false) => {}
                    Err(e) => return Err(e.cause),
                }
            }
            Ok(None)
        };
        let plain = rules();
        let mut shared = rules();
        assert_eq!(slots_of(&mut shared), [Some(0), Some(0), Some(0), Some(0)]);
        for input in [
            json!({"n": 9}),
            json!({"n": 1}),
            json!({"n": 4}),
            json!({"n": 3.5}),
        ] {
            assert_eq!(
                first(&shared, &input, true),
                first(&plain, &input, false),
                "{input}"
            );
        }
        let missing = first(&shared, &json!({}), true);
        assert_eq!(missing, first(&plain, &json!({}), false));
        assert!(missing.unwrap_err().unwrap().contains("'$.n'"));
    }

    #[test]
    fn string_matches_escaped_star_is_literal() {
        assert!(matches(r"log-\*.txt", "log-*.txt"));
        assert!(!matches(r"log-\*.txt", "log-1.txt"));
        assert!(matches(r"\**", "*anything"));
    }

    #[test]
    fn string_matches_escaped_backslash_is_literal() {
        assert!(matches(r"C:\\dir\\*", r"C:\dir\file"));
        assert!(!matches(r"C:\\dir\\*", r"C:\\dir\\file"));
        // `\\*`: a literal backslash, then a wildcard.
        assert!(matches(r"a\\*", r"a\bc"));
        // A backslash before any other character stands for itself.
        assert!(matches(r"a\b", r"a\b"));
    }

    #[test]
    fn string_matches_star_spans_any_run_including_empty() {
        assert!(matches("log-*.txt", "log-.txt"));
        assert!(matches("log-*.txt", "log-2024-01-01.txt"));
        assert!(!matches("log-*.txt", "log-1.txt.bak"));
        assert!(matches("*", ""));
        assert!(matches("**", "abc"));
        assert!(matches("*a*b*", "xxaxxbxx"));
        assert!(!matches("*a*b*", "xxbxxaxx"));
        assert!(matches("a*a", "aa"));
        assert!(!matches("a*a", "a"));
        assert!(matches("*é*", "café au lait"));
    }

    #[test]
    fn string_matches_without_wildcard_is_equality() {
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
        assert!(matches("", ""));
    }

    #[test]
    fn string_matches_on_a_non_string_is_false() {
        let rule = json!({"Variable": "$.s", "StringMatches": "*", "Next": "X"});
        for v in [json!(1), json!(null), json!(["a"]), json!(true)] {
            assert!(!test(rule.clone(), json!({ "s": v })));
        }
    }

    #[test]
    fn missing_variable_is_a_runtime_error_naming_the_path() {
        let err = eval(
            json!({"Variable": "$.x", "StringEquals": "a", "Next": "X"}),
            json!({}),
        )
        .unwrap_err();
        assert_eq!(err.name(), "States.Runtime");
        assert_eq!(
            err.cause.as_deref(),
            Some("Invalid path '$.x': The choice state's condition path references an invalid value.")
        );
        // Every operator but IsPresent fails the same way, IsNull included.
        assert!(eval(json!({"Variable": "$.x", "IsNull": false}), json!({})).is_err());
    }

    #[test]
    fn the_path_named_is_the_first_that_missed_in_evaluation_order() {
        let cause = |rule: Value, input: Value| {
            let err = eval(rule, input).expect_err("a path names nothing");
            err.cause.expect("a cause")
        };
        let rule = json!({"And": [
            {"Variable": "$.a", "NumericEquals": 1},
            {"Not": {"Variable": "$.a", "NumericEqualsPath": "$.gone"}},
            {"Variable": "$.later", "IsNull": true}
        ], "Next": "X"});
        assert!(cause(rule.clone(), json!({"a": 1})).contains("'$.gone'"));
        // The variable is looked up before the operand.
        assert!(cause(rule.clone(), json!({"b": 1})).contains("'$.a'"));
        assert!(cause(rule, json!({"a": 1, "gone": 2})).contains("'$.later'"));
        // A combinator decided before a missing path is reached is no error.
        let or = json!({"Or": [
            {"Variable": "$.a", "IsPresent": true},
            {"Variable": "$.gone", "StringEquals": "x"}
        ], "Next": "X"});
        assert!(test(or.clone(), json!({"a": 1})));
        assert!(cause(or, json!({})).contains("'$.gone'"));
    }

    #[test]
    fn is_present_does_not_fail_on_a_missing_variable() {
        assert!(!test(
            json!({"Variable": "$.x", "IsPresent": true}),
            json!({})
        ));
        assert!(test(
            json!({"Variable": "$.x", "IsPresent": false}),
            json!({})
        ));
        assert!(test(
            json!({"Variable": "$.x", "IsPresent": true}),
            json!({"x": null})
        ));
    }

    #[test]
    fn missing_comparison_path_is_a_runtime_error() {
        let err = eval(
            json!({"Variable": "$.a", "NumericEqualsPath": "$.b"}),
            json!({"a": 1}),
        )
        .unwrap_err();
        assert_eq!(err.name(), "States.Runtime");
        assert!(err.cause.unwrap().contains("'$.b'"));
    }

    #[test]
    fn path_operand_of_another_type_is_false() {
        let input = json!({"n": 1, "s": "1", "t": "2012-10-09T19:00:55Z", "b": true});
        assert!(!test(
            json!({"Variable": "$.n", "NumericEqualsPath": "$.s"}),
            input.clone()
        ));
        assert!(!test(
            json!({"Variable": "$.s", "StringEqualsPath": "$.n"}),
            input.clone()
        ));
        assert!(!test(
            json!({"Variable": "$.t", "TimestampEqualsPath": "$.s"}),
            input.clone()
        ));
        assert!(!test(
            json!({"Variable": "$.b", "BooleanEqualsPath": "$.s"}),
            input.clone()
        ));
        assert!(test(
            json!({"Variable": "$.t", "TimestampEqualsPath": "$.t"}),
            input
        ));
    }

    #[test]
    fn numeric_equals_ignores_strings_that_look_like_numbers() {
        // Recorded from AWS: `"42"` is not the number 42.
        assert!(!test(
            json!({"Variable": "$.v", "NumericEquals": 42}),
            json!({"v": "42"})
        ));
        assert!(!test(
            json!({"Variable": "$.v", "NumericEquals": 0}),
            json!({"v": false})
        ));
    }

    #[test]
    fn int_and_float_compare_by_value() {
        let rule = |op: &str, n: Value| json!({"Variable": "$.v", op: n});
        assert!(test(rule("NumericEquals", json!(1.0)), json!({"v": 1})));
        assert!(test(rule("NumericEquals", json!(0)), json!({"v": 0.0})));
        assert!(test(rule("NumericLessThan", json!(1.5)), json!({"v": 1})));
        assert!(test(
            rule("NumericGreaterThan", json!(-0.5)),
            json!({"v": 0})
        ));
        assert!(!test(rule("NumericEquals", json!(1)), json!({"v": 1.1})));
    }

    #[test]
    fn large_integers_compare_exactly() {
        let big = json!({"v": 9_007_199_254_740_993_u64});
        assert!(!test(
            json!({"Variable": "$.v", "NumericEquals": 9_007_199_254_740_992_u64}),
            big.clone()
        ));
        assert!(test(
            json!({"Variable": "$.v", "NumericGreaterThan": 9_007_199_254_740_992.0}),
            big
        ));
        assert!(test(
            json!({"Variable": "$.v", "NumericLessThan": -1}),
            json!({"v": i64::MIN})
        ));
        assert!(test(
            json!({"Variable": "$.v", "NumericGreaterThan": i64::MAX}),
            json!({"v": u64::MAX})
        ));
    }

    #[test]
    fn string_order_is_utf16_code_unit_order() {
        // U+FFFD sorts after U+1F600 in UTF-16 (a surrogate pair starts 0xD83D).
        assert!(test(
            json!({"Variable": "$.v", "StringGreaterThan": "😀"}),
            json!({"v": "\u{FFFD}"})
        ));
        assert!(test(
            json!({"Variable": "$.v", "StringLessThan": "B"}),
            json!({"v": "AB"})
        ));
        assert!(test(
            json!({"Variable": "$.v", "StringGreaterThanEquals": "A"}),
            json!({"v": "A"})
        ));
        // Recorded from AWS: a longer string with the same start is greater.
        assert!(!test(
            json!({"Variable": "$.v", "StringGreaterThan": "A "}),
            json!({"v": "A"})
        ));
    }

    #[test]
    fn timestamp_comparisons_use_instants_not_text() {
        let rule = json!({"Variable": "$.t", "TimestampEquals": "2012-10-09T18:00:55Z"});
        assert!(test(rule, json!({"t": "2012-10-09T19:00:55+01:00"})));
        assert!(test(
            json!({"Variable": "$.t", "TimestampLessThan": "2012-10-09T19:00:55.000000001Z"}),
            json!({"t": "2012-10-09T19:00:55Z"})
        ));
    }

    #[test]
    fn timestamp_operators_are_false_for_non_timestamps() {
        let rule = json!({"Variable": "$.t", "TimestampLessThanEquals": "2012-10-09T19:00:55Z"});
        for v in [
            json!("2012-10-09T19:00:55"),
            json!("2012-10-09"),
            json!(""),
            json!(0),
            json!(null),
        ] {
            assert!(!test(rule.clone(), json!({ "t": v })), "{v}");
        }
    }

    #[test]
    fn is_timestamp_requires_a_valid_rfc3339_string() {
        let rule = json!({"Variable": "$.t", "IsTimestamp": true});
        assert!(test(rule.clone(), json!({"t": "2016-03-14T01:59:00Z"})));
        assert!(test(
            rule.clone(),
            json!({"t": "2016-03-14T01:59:00.123+05:30"})
        ));
        for v in [
            json!("2016-03-14T01:59:00"),
            json!("2016-03-14 01:59:00Z"),
            json!("2016-13-14T01:59:00Z"),
            json!(1_457_920_740),
        ] {
            assert!(!test(rule.clone(), json!({ "t": v })), "{v}");
        }
    }

    #[test]
    fn is_operators_compare_the_kind_with_the_expected_flag() {
        let input = json!({"b": false, "n": null, "i": 1.5, "s": ""});
        assert!(test(
            json!({"Variable": "$.b", "IsBoolean": true}),
            input.clone()
        ));
        assert!(!test(
            json!({"Variable": "$.b", "IsBoolean": false}),
            input.clone()
        ));
        assert!(test(
            json!({"Variable": "$.n", "IsNull": true}),
            input.clone()
        ));
        assert!(test(
            json!({"Variable": "$.i", "IsNumeric": true}),
            input.clone()
        ));
        assert!(test(
            json!({"Variable": "$.s", "IsString": true}),
            input.clone()
        ));
        assert!(test(json!({"Variable": "$.s", "IsNumeric": false}), input));
    }

    #[test]
    fn boolean_equals_needs_a_boolean_value() {
        let rule = json!({"Variable": "$.v", "BooleanEquals": false});
        assert!(test(rule.clone(), json!({"v": false})));
        for v in [json!(0), json!(""), json!(null), json!([])] {
            assert!(!test(rule.clone(), json!({ "v": v })));
        }
    }

    #[test]
    fn and_stops_at_the_first_false_rule() {
        // The documented guard: the comparison on a missing key is never evaluated.
        let rule = json!({"And": [
            {"Variable": "$.maybe", "IsPresent": true},
            {"Variable": "$.maybe", "StringEquals": "foo"}
        ], "Next": "X"});
        assert!(!test(rule.clone(), json!({})));
        assert!(test(rule, json!({"maybe": "foo"})));
    }

    #[test]
    fn or_stops_at_the_first_true_rule() {
        let rule = json!({"Or": [
            {"Variable": "$.a", "NumericEquals": 1},
            {"Variable": "$.missing", "NumericEquals": 1}
        ]});
        assert!(test(rule.clone(), json!({"a": 1})));
        assert!(eval(rule, json!({"a": 2})).is_err());
    }

    #[test]
    fn not_negates_and_nests() {
        let rule = json!({"Not": {"Or": [
            {"Variable": "$.type", "StringEquals": "Private"},
            {"Not": {"Variable": "$.value", "NumericLessThan": 30}}
        ]}, "Next": "Public"});
        assert!(test(rule.clone(), json!({"type": "Public", "value": 22})));
        assert!(!test(rule.clone(), json!({"type": "Private", "value": 22})));
        assert!(!test(rule, json!({"type": "Public", "value": 31})));
    }

    #[test]
    fn singleton_and_with_nested_comments_compiles() {
        // As in the AWS documentation's example, recorded as accepted.
        let rule = json!({"And": [
            {"Variable": "$.status", "StringEquals": "complete", "Comment": "done?"}
        ], "Comment": "go on", "Next": "SuccessState"});
        assert!(test(rule, json!({"status": "complete"})));
    }

    #[test]
    fn context_and_variable_paths_are_readable() {
        let mut vars = Vars::default();
        vars.set("limit".into(), json!({"max": 10}));
        let context = json!({"Execution": {"Name": "exec-1"}});
        let input = json!({"n": 5});
        let env = Env {
            input: &input,
            context: &crate::expr::context::Context::from_value(context.clone()),
            vars: &vars,
        };
        let c = compiled(json!({"Variable": "$.n", "NumericLessThanPath": "$limit.max"}));
        assert!(c.eval(&env).unwrap());
        let c = compiled(json!({"Variable": "$$.Execution.Name", "StringMatches": "exec-*"}));
        assert!(c.eval(&env).unwrap());
        let c = compiled(json!({"Variable": "$unset", "IsPresent": false}));
        assert!(c.eval(&env).unwrap());
    }

    #[test]
    fn top_level_fields_are_left_to_the_caller() {
        compiled(json!({
            "Variable": "$.x", "IsPresent": true,
            "Next": "A", "Assign": {"y": 1}, "Output": {"z": 2}, "Comment": "c"
        }));
    }

    #[test]
    fn invalid_timestamp_constant_is_a_compile_problem() {
        let p = problems(json!({"Variable": "$.t", "TimestampEquals": "2016-03-14T01:59:00"}));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].pointer, "/States/Check/Choices/0/TimestampEquals");
        assert!(p[0].message.contains("RFC 3339"), "{}", p[0].message);
    }

    #[test]
    fn operand_of_the_wrong_type_is_reported_at_the_operator() {
        for (op, bad) in [
            ("NumericEquals", json!("1")),
            ("BooleanEquals", json!("true")),
            ("IsNull", json!(1)),
            ("IsPresent", json!(null)),
            ("StringEquals", json!(1)),
            ("StringMatches", json!(["*"])),
            ("TimestampGreaterThan", json!(0)),
            ("NumericEqualsPath", json!(1)),
        ] {
            let p = problems(json!({"Variable": "$.v", op: bad}));
            assert_eq!(p.len(), 1, "{op}: {p:?}");
            assert_eq!(p[0].pointer, format!("/States/Check/Choices/0/{op}"));
        }
    }

    #[test]
    fn exactly_one_comparison_operator_is_allowed() {
        let p = problems(json!({"Variable": "$.v", "NumericEquals": 1, "StringEquals": "1"}));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].pointer, "/States/Check/Choices/0");
        assert!(p[0].message.contains("NumericEquals, StringEquals"));
    }

    #[test]
    fn rule_without_an_operator_is_a_problem() {
        let p = problems(json!({"Variable": "$.v", "Next": "X"}));
        assert_eq!(p[0].pointer, "/States/Check/Choices/0");
        let p = problems(json!({"NumericEquals": 1}));
        assert!(p[0].message.contains("Variable"), "{}", p[0].message);
    }

    #[test]
    fn nested_rules_cannot_carry_next() {
        let p =
            problems(json!({"Not": {"Variable": "$.v", "IsNull": true, "Next": "X"}, "Next": "Y"}));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].pointer, "/States/Check/Choices/0/Not/Next");
    }

    #[test]
    fn and_or_need_a_non_empty_array_and_not_an_object() {
        assert_eq!(
            problems(json!({"And": []}))[0].pointer,
            "/States/Check/Choices/0/And"
        );
        assert_eq!(
            problems(json!({"Or": {"Variable": "$.v", "IsNull": true}}))[0].pointer,
            "/States/Check/Choices/0/Or"
        );
        assert_eq!(
            problems(json!({"Not": [{"Variable": "$.v", "IsNull": true}]}))[0].pointer,
            "/States/Check/Choices/0/Not"
        );
        assert_eq!(
            problems(json!({"And": [{"Variable": "$.v", "IsNull": true}], "Not": {"Variable": "$.v", "IsNull": true}}))
                .len(),
            1
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_pointer() {
        let p = problems(json!({"Or": [
            {"Variable": "$.a", "NumericEquals": "x"},
            {"Variable": "$.b", "IsNull": true},
            {"Variable": "b", "IsNull": true},
            {"And": [{"Variable": "$.c", "StringEqual": "y"}]}
        ]}));
        let pointers: Vec<&str> = p.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/States/Check/Choices/0/Or/0/NumericEquals",
                "/States/Check/Choices/0/Or/2/Variable",
                "/States/Check/Choices/0/Or/3/And/0/StringEqual",
                "/States/Check/Choices/0/Or/3/And/0",
            ]
        );
        assert!(
            p[2].message.contains("did you mean \"StringEquals\""),
            "{}",
            p[2].message
        );
    }

    #[test]
    fn variable_must_be_a_reference_path() {
        for bad in [
            "$.items[*].id",
            "$..id",
            "$.a[?(@.b == 1)]",
            "$.a[0:2]",
            "a.b",
        ] {
            let p = problems(json!({"Variable": bad, "IsPresent": true}));
            assert_eq!(p[0].pointer, "/States/Check/Choices/0/Variable", "{bad}");
        }
        compiled(json!({"Variable": "$", "IsString": true}));
        compiled(json!({"Variable": "$['a b'][0]", "IsString": true}));
    }

    #[test]
    fn jsonata_condition_is_not_a_jsonpath_rule() {
        let p = problems(json!({"Condition": "{% true %}", "Next": "X"}));
        assert_eq!(p[0].pointer, "/States/Check/Choices/0/Condition");
    }

    #[test]
    fn a_rule_must_be_an_object() {
        let p = problems(json!("StringEquals"));
        assert_eq!(p[0].pointer, "/States/Check/Choices/0");
    }

    #[test]
    fn conditions_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Condition>();
    }

    /// Cases recorded from AWS in `shared/conformance/cases`.
    fn conformance_cases(prefix: &str) -> Option<Vec<(String, Value)>> {
        let dir = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/conformance/cases"
        ));
        if !dir.is_dir() {
            eprintln!("skipping: {} is absent", dir.display());
            return None;
        }
        let mut cases: Vec<(String, Value)> = std::fs::read_dir(dir)
            .expect("the cases directory is readable")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
            .map(|n| {
                let text = std::fs::read_to_string(dir.join(&n)).expect("a case file is readable");
                let case = serde_json::from_str(&text).expect("a case file is JSON");
                (n, case)
            })
            .collect();
        cases.sort_by(|a, b| a.0.cmp(&b.0));
        Some(cases)
    }

    /// How many `choice_operators` cases pass; a drop is a regression.
    const CHOICE_OPERATORS_PASSING: usize = 357;

    #[test]
    fn conformance_choice_operators_match_aws() {
        let Some(cases) = conformance_cases("choice_operators.") else {
            return;
        };
        let vars = Vars::default();
        let context = json!({});
        let mut failures = Vec::new();
        for (name, case) in &cases {
            let rule = &case["definition"]["States"]["CheckValues"]["Choices"][0];
            let expected = &case["expected"];
            let mut problems = Vec::new();
            let compiled = compile(rule, "/States/CheckValues/Choices/0", true, &mut problems);
            let env = Env {
                input: &case["input"],
                context: &crate::expr::context::Context::from_value(context.clone()),
                vars: &vars,
            };
            let got = match &compiled {
                Some(c) => c.eval(&env),
                None => Err(WorkflowError::new("(compile)", format!("{problems:?}"))),
            };
            let ok = match expected["status"].as_str() {
                Some("SUCCEEDED") => {
                    let want = expected["output"]["TestResult.$"] == "ConditionTrue";
                    matches!(got, Ok(b) if b == want)
                }
                Some("FAILED") => match &got {
                    Err(e) => Some(e.name()) == expected["error"].as_str(),
                    // A definition AWS would reject fails before it runs.
                    Ok(_) => false,
                },
                _ => false,
            };
            if !ok {
                failures.push(format!(
                    "{name}: rule {rule} input {} expected {expected} got {got:?}",
                    case["input"]
                ));
            }
        }
        let passed = cases.len() - failures.len();
        for f in &failures {
            println!("FAIL {f}");
        }
        println!(
            "choice_operators conformance: {passed}/{} pass",
            cases.len()
        );
        assert!(
            passed >= CHOICE_OPERATORS_PASSING,
            "{passed} pass, fewer than the {CHOICE_OPERATORS_PASSING} recorded"
        );
        assert!(failures.is_empty(), "{} failures", failures.len());
    }

    /// Every JSONPath Choice rule in every recorded definition: AWS accepted it, so must we.
    #[test]
    fn conformance_choice_rules_compile() {
        let Some(cases) = conformance_cases("") else {
            return;
        };
        fn walk(v: &Value, jsonata: bool, pointer: &str, out: &mut Vec<(String, Value)>) {
            match v {
                Value::Object(map) => {
                    let jsonata = match map.get("QueryLanguage").and_then(Value::as_str) {
                        Some(lang) => lang == "JSONata",
                        None => jsonata,
                    };
                    if map.get("Type").and_then(Value::as_str) == Some("Choice") && !jsonata {
                        if let Some(Value::Array(rules)) = map.get("Choices") {
                            for (i, r) in rules.iter().enumerate() {
                                out.push((format!("{pointer}/Choices/{i}"), r.clone()));
                            }
                        }
                    }
                    for (k, c) in map {
                        walk(c, jsonata, &pointer_join(pointer, k), out);
                    }
                }
                Value::Array(items) => {
                    for (i, c) in items.iter().enumerate() {
                        walk(c, jsonata, &pointer_join(pointer, &i.to_string()), out);
                    }
                }
                _ => {}
            }
        }
        let mut seen = 0;
        let mut failures = Vec::new();
        for (name, case) in &cases {
            let mut rules = Vec::new();
            walk(&case["definition"], false, "", &mut rules);
            for (pointer, rule) in rules {
                seen += 1;
                let mut problems = Vec::new();
                if compile(&rule, &pointer, true, &mut problems).is_none() {
                    failures.push(format!("{name} {pointer}: {problems:?}"));
                }
            }
        }
        for f in &failures {
            println!("FAIL {f}");
        }
        println!(
            "JSONPath Choice rules compiled: {}/{seen}",
            seen - failures.len()
        );
        assert!(failures.is_empty());
    }
}
