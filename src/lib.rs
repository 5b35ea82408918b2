//! stepstream: Amazon States Language workflows, Express semantics, run on Kafka.
//!
//! The data flows through the modules in this order (each uses only those above it):
//! - [`express`] holds what AWS fixes for every layer: the payload limit, names, ARNs;
//! - [`expr`] parses and evaluates the expression languages (JSONPath, payload templates,
//!   intrinsics, Choice rules, JSONata) over state data, with the Context object and variables;
//! - [`asl`] reads a definition into a typed model, its expressions parsed by [`expr`], and
//!   reports every problem with a JSON pointer;
//! - [`compile`] turns the model into a [`compile::plan::Plan`] (transitions resolved to indices);
//! - [`exec`] runs one execution of a plan, calling [`tasks`] for Task states;
//! - [`shard`] runs executions on one thread per core; [`pipeline`] feeds them from Kafka and
//!   writes their results back; [`load`] is a Kafka client that drives a pipeline;
//! - [`cli`] holds the `stepstream` commands built on those parts.

pub mod alloc;
pub mod api;
pub mod asl;
pub mod cli;
pub mod compile;
pub mod config;
pub mod error;
pub mod exec;
pub mod expr;
pub mod express;
pub mod load;
pub mod machines;
pub mod metrics;
pub mod pipeline;
pub mod shard;
pub mod tasks;
pub mod value;
