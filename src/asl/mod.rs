//! The language as written: ASL JSON -> typed model, with every problem reported.
//!
//! [`parse::parse_definition`] turns a definition into a [`model::StateMachine`] and a list
//! of [`Problem`]s; a definition with any problem is never compiled or run.

pub mod model;
pub mod parse;
pub mod validate;

pub use crate::expr::problem::{pointer_join, Problem};
