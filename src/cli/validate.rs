//! `stepstream validate FILE...`: every problem of every definition, with JSON pointers.

use crate::asl::parse::parse_definition_str;
use crate::asl::Problem;

/// Validates one definition's text; an empty list means it is valid.
pub fn check(text: &str) -> Vec<Problem> {
    match parse_definition_str(text) {
        Ok(_) => vec![],
        Err(problems) => problems,
    }
}

/// Validates files, printing `FILE: ok` or one line per problem; returns whether all were valid.
pub fn run(files: &[String], out: &mut impl std::io::Write) -> std::io::Result<bool> {
    let mut all_ok = true;
    for f in files {
        let problems = match std::fs::read_to_string(f) {
            Ok(text) => check(&text),
            Err(e) => vec![Problem::new("", format!("cannot read the file: {e}"))],
        };
        if problems.is_empty() {
            writeln!(out, "{f}: ok")?;
        } else {
            all_ok = false;
            writeln!(
                out,
                "{f}: {} problem{}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            )?;
            for p in problems {
                writeln!(out, "  {p}")?;
            }
        }
    }
    Ok(all_ok)
}
