//! stepstream: Amazon States Language workflows, Express semantics, run on Kafka.
//!
//! The data flows through the modules in this order:
//! - [`asl`] reads a definition into a typed model and reports every problem with a JSON pointer;
//! - [`compile`] turns the model into a [`compile::plan::Plan`] (paths, templates, intrinsics and
//!   Choice rules parsed once, transitions resolved to indices);
//! - [`exec`] runs one execution of a plan, calling [`tasks`] for Task states;
//! - [`cli`] holds the `stepstream` commands built on those parts.

pub mod alloc;
pub mod asl;
pub mod cli;
pub mod compile;
pub mod config;
pub mod error;
pub mod exec;
pub mod load;
pub mod metrics;
pub mod pipeline;
pub mod shard;
pub mod tasks;
pub mod value;
