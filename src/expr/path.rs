//! JSONPath as ASL uses it: parsed once, looked up by reference at run time.
//!
//! Roots: `$` (the state's input), `$$` (the Context object) and `$name` (a variable).
//! Definite paths (names and indexes only) resolve to one borrowed value. Indefinite
//! paths (wildcards, slices, unions, `..`, filters) collect their matches into an array,
//! as the JSONPath implementation behind AWS does.

use std::borrow::Cow;
use std::fmt;

use crate::value::{Str, Value};

use super::Env;
use crate::expr::context::Context;

/// Where a path starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$`: the current data.
    Input,
    /// `$$`: the Context object.
    Context,
    /// `$name`: a workflow variable.
    Var(String),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Name(String, Hint),
    Index(i64),
    Wildcard,
    Slice(Option<i64>, Option<i64>, i64),
    Names(Vec<String>),
    Indexes(Vec<i64>),
    /// `..`: the following step applies at every depth.
    Descend,
    Filter(Box<Filter>),
    /// `.length()`: the size of an array, string or object.
    Length,
}

/// One step of a path of names and indexes read from the input (`$.a.b[0]`), the lookup
/// most templates and Choice rules make. Walked apart from [`Seg`]: a `Seg`'s kind is
/// niche-coded in its `String` (five instructions a step to decode), and a plain walk
/// checks neither the root's kind nor `.length()` per lookup (~150 instructions a
/// two-step Choice lookup, ~48 of them the call's fixed part).
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(Box<str>, Hint),
    Index(i64),
}

/// Where a [`Seg::Name`] was found last: objects of one request shape keep their keys in
/// one order, so a lookup usually needs one comparison instead of a scan (path steps were
/// ~15 % of the choice-heavy workload). Shared by every thread running the plan; a stale
/// or raced hint only costs the scan, never a wrong answer, so relaxed atomics suffice.
#[derive(Debug, Default)]
struct Hint(std::sync::atomic::AtomicU32);

impl Hint {
    #[inline]
    fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed) as usize
    }

    #[inline]
    fn set(&self, at: usize) {
        if let Ok(at) = u32::try_from(at) {
            // Written only on a miss, so a hit leaves the cache line shared.
            self.0.store(at, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Clone for Hint {
    fn clone(&self) -> Hint {
        Hint(std::sync::atomic::AtomicU32::new(
            self.0.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }
}

/// A hint is a cache: two paths of the same steps are equal whatever their hints.
impl PartialEq for Hint {
    fn eq(&self, _: &Hint) -> bool {
        true
    }
}

/// A filter expression `[?( ... )]`.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Or(Vec<Filter>),
    And(Vec<Filter>),
    Not(Box<Filter>),
    Exists(Operand),
    Compare(Operand, CmpOp, Operand),
    /// `@.qty > 1`: a field of the element, by plain steps, against a number: the usual
    /// filter, tested without [`compare`]'s dispatch on what both sides hold (~170
    /// instructions an element in pass-reshape, where filters test 72 per execution).
    Number(Box<[Step]>, CmpOp, f64),
    /// `@.status == 'PAID'` (`true`) or `!=` (`false`): a field of the element, by plain
    /// steps, against a string.
    Text(Box<[Step]>, bool, Str),
}

impl Filter {
    /// `left op right`, in the specialized form where it has one. Each gives what
    /// [`compare`] gives for those operands (`filter_forms_agree_with_the_general_comparison`).
    fn compare(left: Operand, op: CmpOp, right: Operand) -> Filter {
        if let Operand::Current(segs) = &left {
            if let Some(steps) = plain_steps(segs) {
                match &right {
                    Operand::Literal(Value::Number(n)) => {
                        if let Some(x) = n.as_f64() {
                            return Filter::Number(steps, op, x);
                        }
                    }
                    Operand::Literal(Value::String(s)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => {
                        return Filter::Text(steps, op == CmpOp::Eq, s.clone());
                    }
                    _ => {}
                }
            }
        }
        Filter::Compare(left, op, right)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `@...`: relative to the element being filtered.
    Current(Vec<Seg>),
    /// `$...`: relative to the path's root value.
    Root(Vec<Seg>),
    Literal(Value),
}

/// A compiled JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    text: String,
    root: Root,
    segs: Vec<Seg>,
    definite: bool,
    // Each name step's key as a `Str` marked plain where it is (empty for other steps):
    // ResultPath inserts it (a 24-byte copy, not a new string, and no escape scan when
    // written). Lookups keep the `String` in `Seg::Name`, whose bytes are one load away.
    keys: Vec<Str>,
    // The path as plain steps when it is only names and indexes on the input (else empty,
    // and `plain_input` false).
    plain_input: bool,
    steps: Box<[Step]>,
}

/// An indefinite path matched more data than one value may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// The limit, in bytes of JSON.
    pub limit: usize,
}

impl TooLarge {
    /// The workflow error for it: `States.DataLimitExceeded` naming the path and field.
    pub fn error(&self, path: &str, field: &str) -> crate::error::WorkflowError {
        crate::error::WorkflowError::new(
            crate::error::names::DATA_LIMIT_EXCEEDED,
            format!(
                "The JSONPath '{path}' specified for the field '{field}' matched more than {} bytes of data.",
                self.limit
            ),
        )
    }
}

/// Why a path string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// The path as written.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSONPath {:?}: {}", self.path, self.reason)
    }
}

impl std::error::Error for PathError {}

impl Path {
    /// Parses a path such as `$.order.items[0].price`, `$$.Execution.Id` or `$total`.
    pub fn parse(text: &str) -> Result<Path, PathError> {
        let err = |reason: String| PathError {
            path: text.to_string(),
            reason,
        };
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        if !p.eat(b'$') {
            return Err(err("a path starts with '$'".into()));
        }
        let root = if p.eat(b'$') {
            Root::Context
        } else if p.peek().is_some_and(is_ident_start) {
            let start = p.i;
            while p.peek().is_some_and(is_ident_char) {
                p.i += 1;
            }
            Root::Var(text[start..p.i].to_string())
        } else {
            Root::Input
        };
        let segs = p.segments(false).map_err(err)?;
        if p.i != p.s.len() {
            return Err(err(format!("unexpected {:?} at offset {}", p.rest(), p.i)));
        }
        let definite = segs
            .iter()
            .all(|s| matches!(s, Seg::Name(..) | Seg::Index(_) | Seg::Length));
        let keys = segs
            .iter()
            .map(|s| match s {
                Seg::Name(n, _) => Str::scanned(n),
                _ => Str::new(),
            })
            .collect();
        let steps = (root == Root::Input).then(|| plain_steps(&segs)).flatten();
        let plain_input = steps.is_some();
        let steps = steps.unwrap_or_default();
        Ok(Path {
            text: text.to_string(),
            root,
            segs,
            definite,
            keys,
            plain_input,
            steps,
        })
    }

    /// The path as written in the definition.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where the path starts.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// True for `$` alone (or `$$`, `$name` alone): the whole root value.
    pub fn is_root_only(&self) -> bool {
        self.segs.is_empty()
    }

    /// True when the path names at most one value (no wildcard, slice, union, `..` or filter).
    pub fn is_definite(&self) -> bool {
        self.definite
    }

    /// True when the path only uses names and indexes, as ResultPath requires.
    pub fn is_reference(&self) -> bool {
        self.segs
            .iter()
            .all(|s| matches!(s, Seg::Name(..) | Seg::Index(_)))
    }

    /// The root value, or `None` for `$$`, which is looked up part by part ([`Context::part`]).
    fn root_value<'v>(&self, env: &Env<'v>) -> Option<&'v Value> {
        match &self.root {
            Root::Input => Some(env.input),
            Root::Context => None,
            Root::Var(name) => env.vars.get(name),
        }
    }

    /// Looks the path up: a borrowed value for a definite path, a new array for an
    /// indefinite one; `None` when a definite path is not there, and also when an
    /// indefinite path matches more than [`Path::eval_checked`] allows.
    pub fn eval<'v>(&self, env: &Env<'v>) -> Option<Cow<'v, Value>> {
        self.eval_checked(env).ok().flatten()
    }

    /// For a path of plain names and indexes on the input, what it finds there (the
    /// inner `None`: nothing); `None` for any other path.
    #[inline(always)]
    pub(crate) fn on_input<'v>(&self, env: &Env<'v>) -> Option<Option<&'v Value>> {
        self.plain_input.then(|| walk(env.input, &self.steps))
    }

    /// Like [`Path::eval`], but an indefinite path whose matches add up to more than the
    /// Context's `max_value_bytes` of JSON is an error instead of a copy of them all
    /// (`$..*` over a deep input copies each subtree once per ancestor).
    #[inline]
    pub fn eval_checked<'v>(&self, env: &Env<'v>) -> Result<Option<Cow<'v, Value>>, TooLarge> {
        // The common case, inlined where templates and Choice rules read their fields: a
        // definite path on the input (two calls and their returned wrappers were ~40 % of
        // a one-step lookup).
        if self.plain_input {
            return Ok(walk(env.input, &self.steps).map(Cow::Borrowed));
        }
        if self.definite && self.root == Root::Input {
            return Ok(lookup_definite(env.input, &self.segs));
        }
        self.eval_checked_rest(env)
    }

    fn eval_checked_rest<'v>(&self, env: &Env<'v>) -> Result<Option<Cow<'v, Value>>, TooLarge> {
        let cap = env.context.max_value_bytes();
        if self.root == Root::Context {
            return self.eval_context(env.context, cap);
        }
        match self.root_value(env) {
            Some(root) => self.eval_capped(root, cap),
            None => Ok(None),
        }
    }

    /// `$$` paths: a definite path that names a member reads it in place; anything else
    /// (`$$` alone, a wildcard, a filter) needs the whole object, built for this lookup.
    fn eval_context<'v>(
        &self,
        ctx: &'v Context,
        cap: usize,
    ) -> Result<Option<Cow<'v, Value>>, TooLarge> {
        if self.definite {
            if let Some((Seg::Name(first, _), rest)) = self.segs.split_first() {
                return Ok(ctx.part(first).and_then(|p| lookup_definite(p, rest)));
            }
        }
        let whole = ctx.to_value();
        Ok(self
            .eval_capped(&whole, cap)?
            .map(|v| Cow::Owned(v.into_owned())))
    }

    fn eval_capped<'v>(
        &self,
        root: &'v Value,
        cap: usize,
    ) -> Result<Option<Cow<'v, Value>>, TooLarge> {
        if self.definite {
            return Ok(lookup_definite(root, &self.segs));
        }
        // Room for what a filter or wildcard over a typical list finds: grown from empty,
        // the vector reallocated twice on the way to eight matches (perf: 3 % of
        // pass-reshape, in `grow_one` under `select`).
        let mut out = Vec::with_capacity(8);
        select(root, root, &self.segs, &mut out);
        // Measure what the matches would copy before copying any of it.
        let mut total = 2usize;
        for m in &out {
            total = total.saturating_add(crate::expr::size::json_size(m, cap) + 1);
            if total > cap {
                return Err(TooLarge { limit: cap });
            }
        }
        // The array remembers that size (one comma fewer than counted), so the template
        // that places it does not walk it again.
        let size = if out.is_empty() { 2 } else { total - 1 };
        Ok(Some(Cow::Owned(Value::Array(
            crate::value::Array::from_sized(
                out.into_iter().map(Cow::into_owned).collect(),
                Some(size),
            ),
        ))))
    }

    /// Why this path finds nothing in `root`, worded as the JSONPath library behind AWS
    /// words it for InputPath, OutputPath and the `...SecondsPath` fields: a name missing
    /// midway is `Missing property in path $['a']` (the path up to that name), anything
    /// else `No results for path: $['a']['b'][0]` (the whole path).
    pub fn miss_cause(&self, root: &Value) -> String {
        use std::fmt::Write;
        if self.root != Root::Input {
            return format!("No results for path: {}", self.text);
        }
        let mut shown = String::from("$");
        let mut at = Some(root);
        for (i, seg) in self.segs.iter().enumerate() {
            match seg {
                Seg::Name(name, _) => {
                    let _ = write!(shown, "['{name}']");
                    if let Some(Value::Object(m)) = at {
                        at = m.get(name.as_str());
                        if at.is_none() && i + 1 < self.segs.len() {
                            return format!("Missing property in path {shown}");
                        }
                    } else {
                        at = None;
                    }
                }
                Seg::Index(n) => {
                    let _ = write!(shown, "[{n}]");
                    at = at.and_then(|v| step(v, seg));
                }
                // Wildcards, filters, ...: such a path is shown as written.
                _ => return format!("No results for path: {}", self.text),
            }
        }
        format!("No results for path: {shown}")
    }

    /// Like [`Path::eval`] but starting from `root` whatever the path's root is.
    pub fn eval_in<'v>(&self, root: &'v Value) -> Option<Cow<'v, Value>> {
        if self.definite {
            return lookup_definite(root, &self.segs);
        }
        let mut out = Vec::new();
        select(root, root, &self.segs, &mut out);
        Some(Cow::Owned(Value::Array(
            out.into_iter().map(Cow::into_owned).collect(),
        )))
    }

    /// Definite lookup by reference (no allocation); `None` if absent or indefinite, and
    /// for `$$` alone (the whole Context object is not held as one value).
    #[inline]
    pub fn get<'v>(&self, env: &Env<'v>) -> Option<&'v Value> {
        if self.plain_input {
            return walk(env.input, &self.steps);
        }
        self.get_other(env)
    }

    fn get_other<'v>(&self, env: &Env<'v>) -> Option<&'v Value> {
        if !self.definite || self.segs.last() == Some(&Seg::Length) {
            return None;
        }
        let (mut v, segs) = match &self.root {
            Root::Context => match self.segs.split_first() {
                Some((Seg::Name(first, _), rest)) => (env.context.part(first)?, rest),
                _ => return None,
            },
            _ => (self.root_value(env)?, &self.segs[..]),
        };
        for s in segs {
            v = step(v, s)?;
        }
        Some(v)
    }

    /// Writes `value` at this path inside `target`, creating objects along the way,
    /// as ResultPath does. Fails when the path runs into a value that is not an object.
    pub fn set(&self, target: &mut Value, value: Value) -> Result<(), String> {
        if self.segs.is_empty() {
            *target = value;
            return Ok(());
        }
        let mut cur = target;
        for (i, (s, key)) in self.segs.iter().zip(&self.keys).enumerate() {
            let last = i + 1 == self.segs.len();
            cur = match s {
                Seg::Name(n, _) => {
                    let Value::Object(map) = cur else {
                        return Err(format!(
                            "cannot set field {n:?}: the value there is not an object"
                        ));
                    };
                    if last {
                        map.insert(key.clone(), value);
                        return Ok(());
                    }
                    map.entry(key.clone())
                        .or_insert_with(|| Value::Object(Default::default()))
                }
                Seg::Index(idx) => {
                    let Value::Array(arr) = cur else {
                        return Err(format!(
                            "cannot set index {idx}: the value there is not an array"
                        ));
                    };
                    let len = arr.len() as i64;
                    let at = if *idx < 0 { len + idx } else { *idx };
                    if at < 0 || at >= len {
                        return Err(format!("index {idx} is out of bounds"));
                    }
                    let slot = &mut arr[at as usize];
                    if last {
                        *slot = value;
                        return Ok(());
                    }
                    slot
                }
                _ => return Err("only names and indexes can be written to".into()),
            };
        }
        Ok(())
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn lookup_definite<'v>(root: &'v Value, segs: &[Seg]) -> Option<Cow<'v, Value>> {
    Some(match find_definite(root, segs)? {
        Found::At(v) => Cow::Borrowed(v),
        Found::Len(n) => Cow::Owned(Value::from(n)),
    })
}

/// Follows definite steps from `v`: what they reach, or the `.length()` they end with.
#[inline(always)]
fn find_definite<'v>(mut v: &'v Value, segs: &[Seg]) -> Option<Found<'v>> {
    for s in segs {
        if *s == Seg::Length {
            return length(v).map(Found::Len);
        }
        v = step(v, s)?;
    }
    Some(Found::At(v))
}

fn length(v: &Value) -> Option<usize> {
    match v {
        Value::Array(a) => Some(a.len()),
        Value::Object(o) => Some(o.len()),
        Value::String(s) => Some(s.chars().count()),
        _ => None,
    }
}

/// `segs` as plain steps, if they are only names and indexes.
fn plain_steps(segs: &[Seg]) -> Option<Box<[Step]>> {
    segs.iter()
        .map(|s| match s {
            Seg::Name(n, _) => Some(Step::Key(n.as_str().into(), Hint::default())),
            Seg::Index(i) => Some(Step::Index(*i)),
            _ => None,
        })
        .collect()
}

/// Follows plain steps from `v` (see [`Step`]).
#[inline]
fn walk<'v>(mut v: &'v Value, steps: &[Step]) -> Option<&'v Value> {
    for s in steps {
        v = match (s, v) {
            (Step::Key(n, hint), Value::Object(map)) => member(map, n, hint)?,
            (Step::Index(i), Value::Array(arr)) => element(arr, *i)?,
            _ => return None,
        };
    }
    Some(v)
}

// Inlined: a call cost as much as the step itself (~760k calls per 2,000 choice-heavy runs).
#[inline(always)]
fn step<'v>(v: &'v Value, seg: &Seg) -> Option<&'v Value> {
    match (seg, v) {
        (Seg::Name(n, hint), Value::Object(map)) => member(map, n, hint),
        (Seg::Index(i), Value::Array(arr)) => element(arr, *i),
        _ => None,
    }
}

/// `map[name]`, tried first where `hint` says it was last.
#[inline(always)]
fn member<'v>(map: &'v crate::value::Map, name: &str, hint: &Hint) -> Option<&'v Value> {
    if let Some((k, v)) = map.entry_at(hint.get()) {
        if crate::value::same_key(k.as_bytes(), name.as_bytes()) {
            return Some(v);
        }
    }
    let at = map.position(name)?;
    hint.set(at);
    map.entry_at(at).map(|(_, v)| v)
}

/// `arr[i]`, counted from the end when negative.
#[inline(always)]
fn element(arr: &[Value], i: i64) -> Option<&Value> {
    let at = if i < 0 { arr.len() as i64 + i } else { i };
    usize::try_from(at).ok().and_then(|at| arr.get(at))
}

/// Calls `f` on each element of an array or value of an object, in order. A closure, not
/// a boxed iterator: that was an allocation and a dynamic call per element at every
/// wildcard step (`$.items[*].sku`).
#[inline]
fn each_child<'v>(v: &'v Value, f: impl FnMut(&'v Value)) {
    match v {
        Value::Array(a) => a.iter().for_each(f),
        Value::Object(o) => o.values().for_each(f),
        _ => {}
    }
}

/// Collects every match of `segs` under `v` (indefinite evaluation).
fn select<'v>(root: &'v Value, v: &'v Value, segs: &[Seg], out: &mut Vec<Cow<'v, Value>>) {
    let Some((seg, rest)) = segs.split_first() else {
        out.push(Cow::Borrowed(v));
        return;
    };
    match seg {
        Seg::Name(..) | Seg::Index(_) => {
            if let Some(c) = step(v, seg) {
                select(root, c, rest, out);
            }
        }
        Seg::Wildcard => each_child(v, |c| select(root, c, rest, out)),
        Seg::Names(names) => {
            if let Value::Object(map) = v {
                for n in names {
                    if let Some(c) = map.get(n.as_str()) {
                        select(root, c, rest, out);
                    }
                }
            }
        }
        Seg::Indexes(idx) => {
            for i in idx {
                if let Some(c) = step(v, &Seg::Index(*i)) {
                    select(root, c, rest, out);
                }
            }
        }
        Seg::Slice(start, end, stepn) => {
            if let Value::Array(arr) = v {
                for i in slice_indexes(arr.len(), *start, *end, *stepn) {
                    select(root, &arr[i], rest, out);
                }
            }
        }
        Seg::Filter(f) => match v {
            Value::Array(arr) => {
                for c in arr {
                    if filter_matches(f, root, c) {
                        select(root, c, rest, out);
                    }
                }
            }
            Value::Object(_) if filter_matches(f, root, v) => select(root, v, rest, out),
            _ => {}
        },
        Seg::Descend => {
            // `..x`: apply the next step here and at every depth below.
            select(root, v, rest, out);
            each_child(v, |c| select(root, c, segs, out));
        }
        Seg::Length => {
            if let Some(n) = length(v) {
                out.push(Cow::Owned(Value::from(n)));
            }
        }
    }
}

/// The positions `[start:end:step]` picks in an array of `len` items (negative bounds
/// count from the end), as a range: no vector per slice evaluated.
fn slice_indexes(
    len: usize,
    start: Option<i64>,
    end: Option<i64>,
    step: i64,
) -> std::iter::StepBy<std::ops::Range<usize>> {
    let len = len as i64;
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let s = start.map(norm).unwrap_or(0);
    let e = end.map(norm).unwrap_or(len).max(s);
    // Both bounds are within 0..=len after `norm`, so they fit a usize.
    (s as usize..e as usize).step_by(step.max(1) as usize)
}

fn filter_matches(f: &Filter, root: &Value, cur: &Value) -> bool {
    match f {
        Filter::Or(fs) => fs.iter().any(|f| filter_matches(f, root, cur)),
        Filter::And(fs) => fs.iter().all(|f| filter_matches(f, root, cur)),
        Filter::Not(f) => !filter_matches(f, root, cur),
        Filter::Exists(op) => operand(op, root, cur).is_some(),
        Filter::Compare(a, op, b) => {
            let (Some(a), Some(b)) = (operand(a, root, cur), operand(b, root, cur)) else {
                return false;
            };
            compare(a, *op, b)
        }
        // A missing field matches nothing; a field of another kind equals nothing.
        Filter::Number(steps, op, rhs) => match walk(cur, steps) {
            Some(Value::Number(n)) => n
                .as_f64()
                .and_then(|x| x.partial_cmp(rhs))
                .is_some_and(|o| op.holds(o)),
            Some(_) => *op == CmpOp::Ne,
            None => false,
        },
        Filter::Text(steps, equal, rhs) => match walk(cur, steps) {
            Some(Value::String(s)) => {
                crate::value::same_key(s.as_bytes(), rhs.as_bytes()) == *equal
            }
            Some(_) => !*equal,
            None => false,
        },
    }
}

/// What a filter operand finds: a value in the document (or the filter's literal), or the
/// `.length()` it ends with. Not a `Cow<Value>`: that came back through memory and was
/// copied on at once, and the copy waited on the callee's narrower writes (perf: half of
/// `filter_matches`'s samples on pass-reshape, 14 % of that workload).
#[derive(Clone, Copy)]
enum Found<'v> {
    At(&'v Value),
    Len(usize),
}

impl Found<'_> {
    /// `Some` for a number (a length is one), holding its value as f64.
    fn number(self) -> Option<Option<f64>> {
        match self {
            Found::At(Value::Number(n)) => Some(n.as_f64()),
            // usize to f64 is what `Value::from(n)` then `as_f64` gave before.
            Found::Len(n) => Some(Some(n as f64)),
            Found::At(_) => None,
        }
    }
}

#[inline(always)]
fn operand<'v>(op: &'v Operand, root: &'v Value, cur: &'v Value) -> Option<Found<'v>> {
    match op {
        Operand::Literal(v) => Some(Found::At(v)),
        Operand::Current(segs) => find_definite(cur, segs),
        Operand::Root(segs) => find_definite(root, segs),
    }
}

fn compare(a: Found, op: CmpOp, b: Found) -> bool {
    let ord = match (a.number(), b.number(), a, b) {
        (Some(x), Some(y), _, _) => x.zip(y).and_then(|(x, y)| x.partial_cmp(&y)),
        (_, _, Found::At(Value::String(x)), Found::At(Value::String(y))) => match op {
            // Equality of strings (`@.status == 'PAID'`, the usual filter) without a
            // `memcmp` call: the map's own key comparison, a few word compares.
            CmpOp::Eq | CmpOp::Ne => {
                return equal_kinds(crate::value::same_key(x.as_bytes(), y.as_bytes()), op)
            }
            _ => Some(x.cmp(y)),
        },
        // Values that do not order (of different kinds, or null, booleans, arrays and
        // objects): only (in)equality holds. A length is a number, so it equals nothing
        // here.
        (_, _, Found::At(a), Found::At(b)) => return equal_kinds(a == b, op),
        _ => return equal_kinds(false, op),
    };
    ord.is_some_and(|o| op.holds(o))
}

impl CmpOp {
    /// Whether two operands ordered `o` satisfy the operator.
    #[inline]
    fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering;
        match self {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Le => o != Ordering::Greater,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Ge => o != Ordering::Less,
        }
    }
}

/// `==` and `!=` between values that do not order; the other operators are false.
fn equal_kinds(equal: bool, op: CmpOp) -> bool {
    match op {
        CmpOp::Eq => equal,
        CmpOp::Ne => !equal,
        _ => false,
    }
}

struct Parser<'s> {
    s: &'s [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn rest(&self) -> String {
        String::from_utf8_lossy(&self.s[self.i..]).into_owned()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c == b' ' || c == b'\t') {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at offset {}, found {:?}",
                c as char,
                self.i,
                self.rest()
            ))
        }
    }

    /// Parses steps until the end, or (inside a filter) until a character that ends an operand.
    fn segments(&mut self, in_filter: bool) -> Result<Vec<Seg>, String> {
        let mut segs = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some(b'.') => {
                    self.i += 1;
                    if self.eat(b'.') {
                        segs.push(Seg::Descend);
                        if self.peek() == Some(b'[') {
                            continue;
                        }
                    }
                    if self.eat(b'*') {
                        segs.push(Seg::Wildcard);
                        continue;
                    }
                    let name = self.dot_name(in_filter)?;
                    if name == "length()" {
                        segs.push(Seg::Length);
                    } else if name == "length" && self.s[self.i..].starts_with(b"()") {
                        self.i += 2;
                        segs.push(Seg::Length);
                    } else {
                        segs.push(Seg::Name(name, Hint::default()));
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    segs.push(self.bracket()?);
                }
                Some(_) if in_filter => break,
                Some(c) => {
                    return Err(format!(
                        "unexpected '{}' at offset {}; use '.name' or '[...]'",
                        c as char, self.i
                    ))
                }
            }
        }
        Ok(segs)
    }

    fn dot_name(&mut self, in_filter: bool) -> Result<String, String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let stop = c == b'.'
                || c == b'['
                || c == b']'
                || (in_filter
                    && matches!(
                        c,
                        // '(' too: `@.tags.length()` names the function, not "length(".
                        b' ' | b'(' | b')' | b'=' | b'!' | b'<' | b'>' | b'&' | b'|' | b']'
                    ));
            if stop {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return Err(format!("empty field name at offset {start}"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn bracket(&mut self) -> Result<Seg, String> {
        self.skip_ws();
        let seg = match self.peek() {
            Some(b'*') => {
                self.i += 1;
                Seg::Wildcard
            }
            Some(b'\'') | Some(b'"') => {
                let mut names = vec![self.quoted()?];
                self.skip_ws();
                while self.eat(b',') {
                    self.skip_ws();
                    names.push(self.quoted()?);
                    self.skip_ws();
                }
                if names.len() == 1 {
                    Seg::Name(names.pop().expect("one name"), Hint::default())
                } else {
                    Seg::Names(names)
                }
            }
            Some(b'?') => {
                self.i += 1;
                self.skip_ws();
                self.expect(b'(')?;
                let f = self.filter_or()?;
                self.skip_ws();
                self.expect(b')')?;
                Seg::Filter(Box::new(f))
            }
            _ => self.index_or_slice()?,
        };
        self.skip_ws();
        self.expect(b']')?;
        Ok(seg)
    }

    fn quoted(&mut self) -> Result<String, String> {
        let q = self.peek().ok_or("unterminated bracket")?;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted name".into()),
                Some(c) if c == q => {
                    self.i += 1;
                    break;
                }
                // Only an escaped quote is an escape; other backslashes are literal,
                // as in the JSONPath implementation AWS runs.
                Some(b'\\') if self.s.get(self.i + 1) == Some(&q) => {
                    out.push(q);
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| "invalid UTF-8 in name".to_string())
    }

    fn int(&mut self) -> Result<Option<i64>, String> {
        self.skip_ws();
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let t = std::str::from_utf8(&self.s[start..self.i]).expect("ascii");
        self.skip_ws();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse()
            .map(Some)
            .map_err(|_| format!("bad index {t:?} at offset {start}"))
    }

    fn index_or_slice(&mut self) -> Result<Seg, String> {
        let first = self.int()?;
        if self.eat(b':') {
            let end = self.int()?;
            let step = if self.eat(b':') {
                self.int()?.unwrap_or(1)
            } else {
                1
            };
            if step <= 0 {
                return Err("slice step must be positive".into());
            }
            return Ok(Seg::Slice(first, end, step));
        }
        let Some(first) = first else {
            return Err(format!(
                "expected an index, '*', a quoted name or '?(...)' at offset {}",
                self.i
            ));
        };
        let mut idx = vec![first];
        while self.eat(b',') {
            idx.push(self.int()?.ok_or("expected an index after ','")?);
        }
        Ok(if idx.len() == 1 {
            Seg::Index(first)
        } else {
            Seg::Indexes(idx)
        })
    }

    fn filter_or(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.filter_and()?];
        loop {
            self.skip_ws();
            if self.s[self.i..].starts_with(b"||") {
                self.i += 2;
                parts.push(self.filter_and()?);
            } else {
                break;
            }
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            Filter::Or(parts)
        })
    }

    fn filter_and(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.filter_unary()?];
        loop {
            self.skip_ws();
            if self.s[self.i..].starts_with(b"&&") {
                self.i += 2;
                parts.push(self.filter_unary()?);
            } else {
                break;
            }
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            Filter::And(parts)
        })
    }

    fn filter_unary(&mut self) -> Result<Filter, String> {
        self.skip_ws();
        if self.peek() == Some(b'!') && self.s.get(self.i + 1) != Some(&b'=') {
            self.i += 1;
            return Ok(Filter::Not(Box::new(self.filter_unary()?)));
        }
        if self.eat(b'(') {
            let f = self.filter_or()?;
            self.skip_ws();
            self.expect(b')')?;
            return Ok(f);
        }
        let left = self.operand()?;
        self.skip_ws();
        let op = [
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ]
        .into_iter()
        .find(|(t, _)| self.s[self.i..].starts_with(t.as_bytes()));
        let Some((t, op)) = op else {
            return Ok(Filter::Exists(left));
        };
        self.i += t.len();
        self.skip_ws();
        let right = self.operand()?;
        Ok(Filter::compare(left, op, right))
    }

    fn operand(&mut self) -> Result<Operand, String> {
        self.skip_ws();
        match self.peek() {
            Some(b'@') => {
                self.i += 1;
                Ok(Operand::Current(self.segments(true)?))
            }
            Some(b'$') => {
                self.i += 1;
                Ok(Operand::Root(self.segments(true)?))
            }
            Some(b'\'') | Some(b'"') => Ok(Operand::Literal(Value::from(self.quoted()?))),
            Some(_) => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).expect("ascii");
                serde_json::from_str::<Value>(t)
                    .ok()
                    .filter(|v| !v.is_object() && !v.is_array())
                    .map(Operand::Literal)
                    .ok_or_else(|| format!("bad filter operand {t:?} at offset {start}"))
            }
            None => Err("unterminated filter".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::vars::Vars;
    use crate::json;

    /// An indefinite path's array of matches remembers its JSON size (templates place it
    /// without walking it): that size must be what the writer writes.
    #[test]
    fn the_size_an_array_of_matches_remembers_is_its_written_length() {
        let doc = json!({
            "items": [{"sku": "A-1", "n": 1.5}, {"sku": "B \"quoted\"", "n": -2}, {"n": 3}],
            "deep": {"a": {"n": [1, 2, {"n": null}]}, "s": "\u{e9}t\u{e9} \\ \n"}
        });
        for path in [
            "$.items[*].sku",
            "$.items[*].n",
            "$.items[?(@.n > 0)]",
            "$..n",
            "$.items[*].missing",
            "$.deep.*",
            "$.items[0:2]",
            "$.items[*].sku.length()",
            "$.deep..n.length()",
            "$.items[::2].n",
            "$.items[-2:].sku",
            "$.items[5:1]",
        ] {
            let v = eval(path, &doc).unwrap();
            assert!(v.is_array(), "{path} gives an array");
            assert_eq!(
                crate::value::known_len(&v),
                Some(crate::value::to_vec(&v).len()),
                "{path} gives {v}"
            );
        }
    }

    #[test]
    fn one_path_reads_objects_of_any_key_order_whatever_it_found_before() {
        let p = Path::parse("$.a.b").unwrap();
        let vars = Vars::default();
        let ctx = crate::expr::context::Context::from_value(json!({}));
        let docs = [
            (json!({"a": {"b": 1, "c": 2}, "x": 0}), Some(json!(1))),
            (json!({"x": 0, "a": {"c": 2, "b": 3}}), Some(json!(3))),
            (json!({"a": {"b": 4}}), Some(json!(4))),
            // Where the hint points, another key of the same length and first byte.
            (json!({"a": {"c": 0, "b": 5}, "b": 9}), Some(json!(5))),
            (json!({"a": {"bb": 6}, "aa": {"b": 7}}), None),
            (json!({"a": [1, 2]}), None),
        ];
        for _ in 0..2 {
            for (doc, want) in &docs {
                let env = Env {
                    input: doc,
                    context: &ctx,
                    vars: &vars,
                };
                assert_eq!(p.get(&env).cloned(), *want, "in {doc}");
            }
        }
    }

    #[test]
    fn plain_steps_find_what_the_general_walk_finds() {
        let doc = json!({"a": [{"b": 1}, {"b": [10, 20, 30]}], "c": {"d": null}, "e": "s"});
        let vars = Vars::default();
        let ctx = crate::expr::context::Context::from_value(json!({}));
        let env = Env {
            input: &doc,
            context: &ctx,
            vars: &vars,
        };
        for path in [
            "$.a[0].b",
            "$.a[-1].b[-3]",
            "$.a[1].b[3]",
            "$.a[-3]",
            "$.c.d",
            "$.c.x",
            "$.e.x",
            "$.e[0]",
            "$.a.b",
            "$.c[0]",
            "$",
        ] {
            let p = Path::parse(path).unwrap();
            assert!(p.plain_input, "{path}");
            // The same steps through `Seg`s, as a path with a non-plain root walks them.
            let general = lookup_definite(&doc, &p.segs).map(Cow::into_owned);
            for _ in 0..2 {
                assert_eq!(p.get(&env).cloned(), general, "{path}");
                assert_eq!(p.eval(&env).map(Cow::into_owned), general, "{path}");
            }
        }
        for path in ["$.a.length()", "$.a[*].b", "$$.Execution", "$x.a"] {
            assert!(!Path::parse(path).unwrap().plain_input, "{path}");
        }
    }

    fn eval(path: &str, input: &Value) -> Option<Value> {
        let vars = Vars::default();
        let ctx = json!({"Execution": {"Id": "arn:x"}});
        let env = Env {
            input,
            context: &crate::expr::context::Context::from_value(ctx.clone()),
            vars: &vars,
        };
        Path::parse(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .eval(&env)
            .map(Cow::into_owned)
    }

    #[test]
    fn definite_path_borrows_nested_value() {
        let input = json!({"order": {"items": [{"price": 3}, {"price": 5}]}});
        assert_eq!(eval("$.order.items[1].price", &input), Some(json!(5)));
        assert_eq!(
            eval("$['order']['items'][0]", &input),
            Some(json!({"price": 3}))
        );
        assert_eq!(eval("$.order.missing", &input), None);
    }

    #[test]
    fn an_indefinite_path_matching_too_much_is_an_error_before_copying() {
        // Each level repeats its whole subtree among `$..*`'s matches.
        let mut v = json!(vec![0; 100]);
        for _ in 0..50 {
            v = json!([v, vec![0; 100]]);
        }
        let vars = Vars::default();
        let ctx = crate::expr::context::Context::EMPTY.with_max_value_bytes(100_000);
        let env = Env {
            input: &v,
            context: &ctx,
            vars: &vars,
        };
        let p = Path::parse("$..*").unwrap();
        assert_eq!(p.eval_checked(&env), Err(TooLarge { limit: 100_000 }));
        assert_eq!(p.eval(&env), None);
        let small = Path::parse("$[1][*]").unwrap();
        assert!(matches!(small.eval_checked(&env), Ok(Some(_))));
    }

    #[test]
    fn context_and_root_paths() {
        let input = json!(7);
        assert_eq!(eval("$", &input), Some(json!(7)));
        assert_eq!(eval("$$.Execution.Id", &input), Some(json!("arn:x")));
    }

    #[test]
    fn wildcard_and_filter_collect_into_array() {
        let input = json!({"users": [{"n": "a", "s": 0}, {"n": "b", "s": 1}, {"n": "c", "s": 0}]});
        assert_eq!(eval("$.users[*].n", &input), Some(json!(["a", "b", "c"])));
        assert_eq!(
            eval("$.users[?(@.s == 0)].n", &input),
            Some(json!(["a", "c"]))
        );
        assert_eq!(eval("$..n", &input), Some(json!(["a", "b", "c"])));
        assert_eq!(eval("$.users[0:2].n", &input), Some(json!(["a", "b"])));
        assert_eq!(eval("$.users[-1:].n", &input), Some(json!(["c"])));
    }

    /// Numbers order as numbers (a `.length()` is one), strings as strings; values of
    /// other kinds are only ever unequal, and a missing operand matches nothing.
    #[test]
    fn filters_compare_numbers_strings_lengths_and_mixed_kinds() {
        let input = json!({"xs": [
            {"id": 0, "q": 2, "tags": ["a", "b"], "s": "m"},
            {"id": 1, "q": 2.5, "tags": [], "s": "z"},
            {"id": 2, "q": "2", "tags": "ab", "s": 3},
            {"id": 3, "tags": {"k": 1}, "s": null}
        ], "lim": 2});
        for (filter, ids) in [
            ("@.q == 2", json!([0])),
            ("@.q != 2", json!([1, 2])),
            ("@.q >= 2", json!([0, 1])),
            ("@.q < 3", json!([0, 1])),
            ("@.q > $.lim", json!([1])),
            ("@.q == '2'", json!([2])),
            ("@.q <= '2'", json!([2])),
            ("@.s > 'a'", json!([0, 1])),
            ("@.s != 'm'", json!([1, 2, 3])),
            ("@.s == null", json!([3])),
            ("@.tags.length() == 2", json!([0, 2])),
            ("@.tags.length() > 0", json!([0, 2, 3])),
            ("@.tags.length() < $.lim", json!([1, 3])),
            ("@.tags.length() == '2'", json!([])),
            ("@.tags.length() != '2'", json!([0, 1, 2, 3])),
            ("@.q", json!([0, 1, 2])),
            ("@.missing != 1", json!([])),
        ] {
            let path = format!("$.xs[?({filter})].id");
            assert_eq!(eval(&path, &input), Some(ids), "{filter}");
        }
        // String equality at every length class of the key comparison it uses.
        for len in [1, 3, 4, 7, 8, 16, 17, 40] {
            let s: String = (0..len).map(|i| char::from(b'a' + i as u8 % 26)).collect();
            let mut other = s.clone().into_bytes();
            other[len / 2] = b'#';
            let other = String::from_utf8(other).expect("ASCII");
            let input = json!({"xs": [{"s": s.clone()}, {"s": other}]});
            assert_eq!(
                eval(&format!("$.xs[?(@.s == '{s}')].s"), &input),
                Some(json!([s])),
                "{len}"
            );
            assert_eq!(
                eval(&format!("$.xs[?(@.s != '{s}')].s"), &input)
                    .map(|v| v.as_array().map(|a| a.len())),
                Some(Some(1)),
                "{len}"
            );
        }
    }

    /// The specialized filters (`@.x op number`, `@.x ==/!= 'text'`) give what the general
    /// comparison gives, for every operator, on fields of every kind, missing fields and
    /// elements that are no object.
    #[test]
    fn filter_forms_agree_with_the_general_comparison() {
        let ops = [
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ];
        let fields = [
            vec![Seg::Name("x".into(), Hint::default())],
            vec![Seg::Name("x".into(), Hint::default()), Seg::Index(0)],
        ];
        let literals = [
            json!(1),
            json!(1.5),
            json!(-2),
            json!(0),
            json!("a"),
            json!(""),
        ];
        let mut elements = vec![json!({}), json!(7), json!("a"), json!(null)];
        for x in [
            json!(1),
            json!(1.0),
            json!(1.5),
            json!(-3),
            json!(0.0),
            json!("a"),
            json!("b"),
            json!(""),
            json!(null),
            json!(true),
            json!({"y": 1}),
        ] {
            elements.push(json!({ "x": x.clone() }));
            elements.push(json!({ "x": [x.clone()] }));
            elements.push(json!({ "w": 0, "x": x }));
        }
        let root = json!({});
        let mut specialized = 0;
        for segs in &fields {
            for op in ops {
                for lit in &literals {
                    let left = Operand::Current(segs.clone());
                    let right = Operand::Literal(lit.clone());
                    let fast = Filter::compare(left.clone(), op, right.clone());
                    if matches!(fast, Filter::Number(..) | Filter::Text(..)) {
                        specialized += 1;
                    }
                    let general = Filter::Compare(left, op, right);
                    for e in &elements {
                        assert_eq!(
                            filter_matches(&fast, &root, e),
                            filter_matches(&general, &root, e),
                            "{segs:?} {op:?} {lit:?} on {e:?}"
                        );
                    }
                }
            }
        }
        // Numbers with every operator, strings with == and !=, on both fields.
        assert_eq!(specialized, 2 * (4 * 6 + 2 * 2));
    }

    /// Slices count from the end when negative, clamp to the array, and step forward.
    #[test]
    fn slices_pick_indexes_as_written() {
        let input = json!({"a": [0, 1, 2, 3, 4, 5, 6]});
        for (slice, want) in [
            ("[0:2]", json!([0, 1])),
            ("[:3]", json!([0, 1, 2])),
            ("[4:]", json!([4, 5, 6])),
            ("[-2:]", json!([5, 6])),
            ("[:-5]", json!([0, 1])),
            ("[1:6:2]", json!([1, 3, 5])),
            ("[::3]", json!([0, 3, 6])),
            ("[-10:2]", json!([0, 1])),
            ("[5:100]", json!([5, 6])),
            ("[4:2]", json!([])),
            ("[7:]", json!([])),
        ] {
            assert_eq!(eval(&format!("$.a{slice}"), &input), Some(want), "{slice}");
        }
        assert_eq!(
            eval("$.b[*].length()", &json!({"b": ["ab", [1], {}]})),
            Some(json!([2, 1, 0]))
        );
    }

    #[test]
    fn quoted_names_keep_backslashes_except_before_the_quote() {
        let input = json!({"Test\\\"\"Name\"": 1, "it's": 2});
        assert_eq!(eval("$['Test\\\"\"Name\"']", &input), Some(json!(1)));
        assert_eq!(eval("$['it\\'s']", &input), Some(json!(2)));
    }

    #[test]
    fn set_creates_missing_objects_and_rejects_scalars() {
        let mut v = json!({"a": 1});
        Path::parse("$.b.c").unwrap().set(&mut v, json!(2)).unwrap();
        assert_eq!(v, json!({"a": 1, "b": {"c": 2}}));
        assert!(Path::parse("$.a.c").unwrap().set(&mut v, json!(3)).is_err());
        // Keys written by ResultPath are escaped when the output is written.
        let mut v = json!({});
        let p = Path::parse("$['say \"hi\"'].x").unwrap();
        p.set(&mut v, json!(1)).unwrap();
        assert_eq!(v, json!({"say \"hi\"": {"x": 1}}));
        assert_eq!(crate::value::to_string(&v), r#"{"say \"hi\"":{"x":1}}"#);
    }

    #[test]
    fn malformed_paths_are_rejected() {
        for bad in ["", "a.b", "$.", "$[", "$.a[?(@.x ==)]", "$.a]", "$.a[1"] {
            assert!(Path::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    /// The JSONPath library behind AWS names a name missing midway by the path up to it,
    /// and anything else by the whole path.
    #[test]
    fn a_miss_is_worded_as_aws_words_it() {
        let input = crate::json!({"a": {"b": [1, 2]}, "s": "x"});
        for (path, cause) in [
            ("$.missing", "No results for path: $['missing']"),
            ("$.no.such.path", "Missing property in path $['no']"),
            ("$.a.c", "No results for path: $['a']['c']"),
            ("$.a.c.d", "Missing property in path $['a']['c']"),
            ("$.a.b[5]", "No results for path: $['a']['b'][5]"),
            ("$.s.t.u", "No results for path: $['s']['t']['u']"),
        ] {
            let p = Path::parse(path).expect("a valid path");
            assert_eq!(p.miss_cause(&input), cause, "{path}");
        }
    }

    #[test]
    fn length_function_counts_items() {
        assert_eq!(
            eval("$.a.length()", &json!({"a": [1, 2, 3]})),
            Some(json!(3))
        );
    }

    #[test]
    fn variable_root_is_recognised() {
        let p = Path::parse("$total.sum[0]").unwrap();
        assert_eq!(p.root(), &Root::Var("total".into()));
    }
}
