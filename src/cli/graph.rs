//! `stepstream graph F [--format mermaid|dot]`: a state machine as a picture.
//!
//! The definition is validated first (a broken one gets the validator's problems, never a
//! half-drawn graph); the drawing then walks the definition as written, because labels
//! want the rules' text (`$.status == "Pending"`), not their compiled form. Choice rules
//! are edge labels, Catch edges are dashed, Map and Parallel states are subgraphs holding
//! their item processor or branches.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::asl::parse::parse_definition;
use crate::asl::Problem;

/// The picture languages `graph` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Mermaid `flowchart` text (renders on GitHub and in most Markdown viewers).
    Mermaid,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

/// Labels longer than this are cut with an ellipsis, so one long rule cannot swamp a picture.
const MAX_LABEL_CHARS: usize = 60;

/// Draws a definition; the validator's problems when it is not a valid state machine.
pub fn render(definition: &Value, format: Format) -> Result<String, Vec<Problem>> {
    parse_definition(definition)?;
    let mut g = Graph::default();
    g.machine(definition, "s", 0);
    Ok(match format {
        Format::Mermaid => g.mermaid(),
        Format::Dot => g.dot(),
    })
}

/// How an edge is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EdgeKind {
    /// Next, Default, a Choice rule, a branch start.
    Flow,
    /// A Catch: the error path.
    Catch,
}

/// What a node stands for, which decides its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Start,
    End,
    Task,
    Pass,
    Choice,
    Wait,
    Succeed,
    Fail,
    /// A Map or Parallel state: drawn as a node heading its subgraph.
    Group,
}

struct Node {
    id: String,
    label: String,
    shape: Shape,
}

struct Edge {
    from: String,
    to: String,
    label: Option<String>,
    kind: EdgeKind,
}

/// One subgraph: a Map's item processor or a Parallel's branches, with what is inside it.
struct Cluster {
    id: String,
    label: String,
    nodes: Vec<usize>,
    clusters: Vec<usize>,
}

/// Nodes, edges and clusters in the order the definition lists them, so output is stable.
#[derive(Default)]
struct Graph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    clusters: Vec<Cluster>,
    /// Top-level nodes and clusters (not inside any Map or Parallel).
    top_nodes: Vec<usize>,
    top_clusters: Vec<usize>,
    /// Where new nodes and clusters go: the innermost open cluster, if any.
    open: Vec<usize>,
}

impl Graph {
    fn add_node(&mut self, id: String, label: String, shape: Shape) {
        let index = self.nodes.len();
        self.nodes.push(Node { id, label, shape });
        match self.open.last() {
            Some(&c) => self.clusters[c].nodes.push(index),
            None => self.top_nodes.push(index),
        }
    }

    fn edge(&mut self, from: &str, to: &str, label: Option<String>, kind: EdgeKind) {
        self.edges.push(Edge {
            from: from.to_string(),
            to: to.to_string(),
            label: label.map(|l| cut(&l)),
            kind,
        });
    }

    /// Adds one machine (the top level, a branch or an item processor) under id prefix
    /// `prefix`; returns the id of its start marker.
    fn machine(&mut self, m: &Value, prefix: &str, depth: usize) -> String {
        let states = m.get("States").and_then(Value::as_object);
        let names: Vec<&String> = states.map(|s| s.keys().collect()).unwrap_or_default();
        let id_of = |name: &str| -> String {
            let i = names.iter().position(|n| *n == name).unwrap_or(0);
            format!("{prefix}{i}")
        };
        let start = format!("{prefix}_start");
        let end = format!("{prefix}_end");
        self.add_node(start.clone(), "start".into(), Shape::Start);
        if let Some(at) = m.get("StartAt").and_then(Value::as_str) {
            self.edge(&start, &id_of(at), None, EdgeKind::Flow);
        }
        let mut ends = false;
        for (name, state) in states.into_iter().flatten() {
            let id = id_of(name);
            let kind = state.get("Type").and_then(Value::as_str).unwrap_or("");
            let shape = match kind {
                "Task" => Shape::Task,
                "Choice" => Shape::Choice,
                "Wait" => Shape::Wait,
                "Succeed" => Shape::Succeed,
                "Fail" => Shape::Fail,
                "Map" | "Parallel" => Shape::Group,
                _ => Shape::Pass,
            };
            let label = match kind {
                "Task" => match state.get("Resource").and_then(Value::as_str) {
                    Some(r) => format!("{name}\n{}", short_resource(r)),
                    None => name.clone(),
                },
                "Map" | "Parallel" => format!("{kind}: {name}"),
                _ => name.clone(),
            };
            self.add_node(id.clone(), cut(&label), shape);
            if shape == Shape::Group {
                self.group(state, kind, name, &id, depth);
            }
            if let Some(next) = state.get("Next").and_then(Value::as_str) {
                self.edge(&id, &id_of(next), None, EdgeKind::Flow);
            }
            if matches!(shape, Shape::Succeed | Shape::Fail)
                || state.get("End").and_then(Value::as_bool) == Some(true)
            {
                ends = true;
                self.edge(&id, &end, None, EdgeKind::Flow);
            }
            for rule in state
                .get("Choices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(next) = rule.get("Next").and_then(Value::as_str) {
                    self.edge(&id, &id_of(next), Some(rule_text(rule)), EdgeKind::Flow);
                }
            }
            if let Some(next) = state.get("Default").and_then(Value::as_str) {
                self.edge(&id, &id_of(next), Some("default".into()), EdgeKind::Flow);
            }
            for catcher in state
                .get("Catch")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(next) = catcher.get("Next").and_then(Value::as_str) {
                    let errors = strings(catcher.get("ErrorEquals")).join(", ");
                    self.edge(&id, &id_of(next), Some(errors), EdgeKind::Catch);
                }
            }
        }
        if ends {
            self.add_node(end, "end".into(), Shape::End);
        }
        start
    }

    /// Opens the subgraph of a Map or Parallel state and draws what runs inside it.
    fn group(&mut self, state: &Value, kind: &str, name: &str, id: &str, depth: usize) {
        let index = self.clusters.len();
        self.clusters.push(Cluster {
            id: format!("{id}_group"),
            label: cut(&format!("{kind}: {name}")),
            nodes: vec![],
            clusters: vec![],
        });
        match self.open.last() {
            Some(&c) => self.clusters[c].clusters.push(index),
            None => self.top_clusters.push(index),
        }
        self.open.push(index);
        if kind == "Map" {
            let processor = state.get("ItemProcessor").or_else(|| state.get("Iterator"));
            if let Some(p) = processor {
                let start = self.machine(p, &format!("{id}_i"), depth + 1);
                self.edge(id, &start, Some("each item".into()), EdgeKind::Flow);
            }
        } else {
            let branches = state.get("Branches").and_then(Value::as_array);
            for (b, branch) in branches.into_iter().flatten().enumerate() {
                let start = self.machine(branch, &format!("{id}_b{b}_"), depth + 1);
                self.edge(
                    id,
                    &start,
                    Some(format!("branch {}", b + 1)),
                    EdgeKind::Flow,
                );
            }
        }
        self.open.pop();
    }

    fn mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n");
        for &n in &self.top_nodes {
            self.mermaid_node(&mut out, n, 1);
        }
        for &c in &self.top_clusters {
            self.mermaid_cluster(&mut out, c, 1);
        }
        for e in &self.edges {
            let arrow = match (e.kind, &e.label) {
                (EdgeKind::Flow, None) => "-->".to_string(),
                (EdgeKind::Flow, Some(l)) => format!("-- \"{}\" -->", mermaid_text(l)),
                (EdgeKind::Catch, None) => "-.->".to_string(),
                (EdgeKind::Catch, Some(l)) => format!("-. \"{}\" .->", mermaid_text(l)),
            };
            let _ = writeln!(out, "  {} {arrow} {}", e.from, e.to);
        }
        out
    }

    fn mermaid_node(&self, out: &mut String, n: usize, indent: usize) {
        let node = &self.nodes[n];
        let text = mermaid_text(&node.label);
        let (open, close) = match node.shape {
            Shape::Start | Shape::End => ("((", "))"),
            Shape::Choice => ("{", "}"),
            Shape::Wait => ("{{", "}}"),
            Shape::Pass => ("(", ")"),
            Shape::Succeed | Shape::Fail => ("([", "])"),
            Shape::Task | Shape::Group => ("[", "]"),
        };
        let _ = writeln!(
            out,
            "{}{}{open}\"{text}\"{close}",
            "  ".repeat(indent),
            node.id
        );
    }

    fn mermaid_cluster(&self, out: &mut String, c: usize, indent: usize) {
        let cluster = &self.clusters[c];
        let pad = "  ".repeat(indent);
        let _ = writeln!(
            out,
            "{pad}subgraph {}[\"{}\"]",
            cluster.id,
            mermaid_text(&cluster.label)
        );
        for &n in &cluster.nodes {
            self.mermaid_node(out, n, indent + 1);
        }
        for &inner in &cluster.clusters {
            self.mermaid_cluster(out, inner, indent + 1);
        }
        let _ = writeln!(out, "{pad}end");
    }

    fn dot(&self) -> String {
        let mut out = String::from(
            "digraph stepstream {\n  rankdir=TB;\n  graph [fontname=\"Helvetica\", fontsize=11];\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
        );
        for &n in &self.top_nodes {
            self.dot_node(&mut out, n, 1);
        }
        for &c in &self.top_clusters {
            self.dot_cluster(&mut out, c, 1);
        }
        for e in &self.edges {
            let mut attrs = vec![];
            if let Some(l) = &e.label {
                attrs.push(format!("label={}", dot_text(l)));
            }
            if e.kind == EdgeKind::Catch {
                attrs.push("style=dashed".to_string());
            }
            let attrs = if attrs.is_empty() {
                String::new()
            } else {
                format!(" [{}]", attrs.join(", "))
            };
            let _ = writeln!(out, "  {} -> {}{attrs};", e.from, e.to);
        }
        out.push_str("}\n");
        out
    }

    fn dot_node(&self, out: &mut String, n: usize, indent: usize) {
        let node = &self.nodes[n];
        let shape = match node.shape {
            Shape::Start => "circle",
            Shape::End => "doublecircle",
            Shape::Choice => "diamond",
            Shape::Wait => "hexagon",
            Shape::Pass => "box, style=rounded",
            Shape::Succeed | Shape::Fail => "box, style=\"rounded,bold\"",
            Shape::Task | Shape::Group => "box",
        };
        let _ = writeln!(
            out,
            "{}{} [label={}, shape={shape}];",
            "  ".repeat(indent),
            node.id,
            dot_text(&node.label)
        );
    }

    fn dot_cluster(&self, out: &mut String, c: usize, indent: usize) {
        let cluster = &self.clusters[c];
        let pad = "  ".repeat(indent);
        let _ = writeln!(out, "{pad}subgraph cluster_{} {{", cluster.id);
        let _ = writeln!(out, "{pad}  label={};", dot_text(&cluster.label));
        let _ = writeln!(out, "{pad}  style=dashed;");
        for &n in &cluster.nodes {
            self.dot_node(out, n, indent + 1);
        }
        for &inner in &cluster.clusters {
            self.dot_cluster(out, inner, indent + 1);
        }
        let _ = writeln!(out, "{pad}}}");
    }
}

/// The readable end of a resource ARN: a Lambda function's name, an integration's `service:action`.
fn short_resource(arn: &str) -> String {
    if let Some(i) = arn.find(":function:") {
        let name = &arn[i + ":function:".len()..];
        return format!("λ {}", name.split(':').next().unwrap_or(name));
    }
    match arn.strip_prefix("arn:aws:states:::") {
        Some(rest) => rest.to_string(),
        None => arn.rsplit(':').next().unwrap_or(arn).to_string(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A Choice rule as a short expression: `$.status == "Pending"`, `not ($.x is present)`, `a and b`.
fn rule_text(rule: &Value) -> String {
    let Some(obj) = rule.as_object() else {
        return String::new();
    };
    if let Some(cond) = obj.get("Condition") {
        return match cond {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
    }
    for (key, joiner) in [("And", " and "), ("Or", " or ")] {
        if let Some(list) = obj.get(key).and_then(Value::as_array) {
            return list
                .iter()
                .map(|r| format!("({})", rule_text(r)))
                .collect::<Vec<_>>()
                .join(joiner);
        }
    }
    if let Some(inner) = obj.get("Not") {
        return format!("not ({})", rule_text(inner));
    }
    comparison_text(obj)
}

fn comparison_text(obj: &Map<String, Value>) -> String {
    let variable = obj.get("Variable").and_then(Value::as_str).unwrap_or("?");
    for (op, operand) in obj {
        let (base, is_path) = match op.strip_suffix("Path") {
            Some(b) if op != "Variable" => (b, true),
            _ => (op.as_str(), false),
        };
        let symbol = match base {
            "StringEquals" | "NumericEquals" | "BooleanEquals" | "TimestampEquals" => "==",
            "StringLessThan" | "NumericLessThan" | "TimestampLessThan" => "<",
            "StringGreaterThan" | "NumericGreaterThan" | "TimestampGreaterThan" => ">",
            "StringLessThanEquals" | "NumericLessThanEquals" | "TimestampLessThanEquals" => "<=",
            "StringGreaterThanEquals"
            | "NumericGreaterThanEquals"
            | "TimestampGreaterThanEquals" => ">=",
            "StringMatches" => "matches",
            "IsNull" | "IsPresent" | "IsNumeric" | "IsString" | "IsBoolean" | "IsTimestamp" => {
                let what = base.trim_start_matches("Is").to_lowercase();
                return match operand.as_bool() {
                    Some(false) => format!("{variable} is not {what}"),
                    _ => format!("{variable} is {what}"),
                };
            }
            _ => continue,
        };
        let value = match (is_path, operand) {
            (false, v) => v.to_string(),
            (true, Value::String(p)) => p.clone(),
            (true, v) => v.to_string(),
        };
        return format!("{variable} {symbol} {value}");
    }
    variable.to_string()
}

/// Cuts a label to [`MAX_LABEL_CHARS`] characters.
fn cut(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        return label.to_string();
    }
    let mut s: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
    s.push('…');
    s
}

/// Mermaid quoted text: quotes and markup characters as entities, newlines as `<br/>`.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '\n' => out.push_str("<br/>"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A DOT string literal.
fn dot_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition() -> Value {
        json!({
            "StartAt": "Check",
            "States": {
                "Check": {"Type": "Choice", "Choices": [
                    {"Variable": "$.status", "StringEquals": "Pending", "Next": "Work"},
                    {"And": [
                        {"Variable": "$.n", "NumericGreaterThanPath": "$.limit"},
                        {"Not": {"Variable": "$.x", "IsPresent": true}}
                    ], "Next": "Done"}
                ], "Default": "Fan"},
                "Work": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:work",
                         "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Oops"}], "Next": "Done"},
                "Fan": {"Type": "Parallel", "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Map", "ItemProcessor": {
                        "StartAt": "C", "States": {"C": {"Type": "Wait", "Seconds": 1, "End": true}}
                    }, "End": true}}}
                ], "Next": "Done"},
                "Oops": {"Type": "Fail", "Error": "E"},
                "Done": {"Type": "Succeed"}
            }
        })
    }

    #[test]
    fn mermaid_labels_choice_rules_and_dashes_catch_edges() {
        let text = render(&definition(), Format::Mermaid).expect("valid");
        assert!(text.starts_with("flowchart TD\n"), "{text}");
        assert!(
            text.contains("s0 -- \"$.status == #quot;Pending#quot;\" --> s1"),
            "{text}"
        );
        assert!(
            text.contains("-- \"($.n #gt; $.limit) and (not ($.x is present))\" --> s4"),
            "{text}"
        );
        assert!(text.contains("s0 -- \"default\" --> s2"), "{text}");
        assert!(text.contains("s1 -. \"States.ALL\" .-> s3"), "{text}");
        assert!(text.contains("s1[\"Work<br/>λ work\"]"), "{text}");
    }

    #[test]
    fn map_and_parallel_are_nested_subgraphs() {
        let text = render(&definition(), Format::Mermaid).expect("valid");
        let parallel = text.find("subgraph s2_group").expect("parallel subgraph");
        let map = text
            .find("subgraph s2_b1_0_group")
            .expect("map subgraph inside");
        assert!(parallel < map, "{text}");
        assert!(
            text.contains("s2 -- \"branch 2\" --> s2_b1__start"),
            "{text}"
        );
        assert!(
            text.contains("s2_b1_0 -- \"each item\" --> s2_b1_0_i_start"),
            "{text}"
        );
        let opened = text
            .lines()
            .filter(|l| l.trim_start().starts_with("subgraph "))
            .count();
        let closed = text.lines().filter(|l| l.trim() == "end").count();
        assert_eq!((opened, closed), (2, 2), "{text}");
    }

    #[test]
    fn dot_output_uses_clusters_and_dashed_catch_edges() {
        let text = render(&definition(), Format::Dot).expect("valid");
        assert!(text.starts_with("digraph stepstream {"), "{text}");
        assert!(text.contains("subgraph cluster_s2_group {"), "{text}");
        assert!(
            text.contains("s1 -> s3 [label=\"States.ALL\", style=dashed];"),
            "{text}"
        );
        assert!(
            text.contains("s0 [label=\"Check\", shape=diamond];"),
            "{text}"
        );
        assert_eq!(
            text.matches('{').count(),
            text.matches('}').count(),
            "{text}"
        );
    }

    #[test]
    fn an_invalid_definition_gets_the_validators_problems() {
        let bad = json!({"StartAt": "Nope", "States": {"A": {"Type": "Pass", "End": true}}});
        let problems = render(&bad, Format::Mermaid).expect_err("invalid");
        assert!(!problems.is_empty());
    }

    #[test]
    fn labels_are_cut_and_escaped() {
        assert_eq!(cut(&"x".repeat(100)).chars().count(), MAX_LABEL_CHARS);
        assert_eq!(dot_text("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(
            mermaid_text("<a> \"b\" #1"),
            "#lt;a#gt; #quot;b#quot; #35;1"
        );
    }
}
