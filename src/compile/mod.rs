//! Model -> plan: states become indices and every expression the model holds (parsed by
//! [`crate::expr`] while [`crate::asl`] validated it) is resolved once; the interpreter in
//! `exec` only walks the resulting [`plan::Plan`].

pub mod plan;
