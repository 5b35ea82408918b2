//! The Kafka pipeline behind `stepstream run`.
//!
//! One poller thread ([`source`]) consumes the input topics in a consumer group and hands
//! records to shard threads ([`crate::shard`]), which decode them ([`request`]), run the
//! executions and produce one result (or dead letter, [`result`]) per record. Offsets are
//! committed only up to the lowest record whose output the broker has not acknowledged
//! ([`offsets`]): at-least-once, nothing lost, whatever order executions finish in. Each
//! commit's metadata lists the offsets above it that are already answered ([`acked`]), so a
//! crash repeats only what finished since the last commit, and a static membership id
//! ([`instance`]) gives a restarted process its partitions back without waiting for the
//! session timeout.

pub mod acked;
pub mod definitions;
pub mod embedded;
pub mod instance;
pub mod intake;
pub mod observe;
pub mod offsets;
pub mod request;
pub mod result;
pub mod sink;
pub mod source;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer;

use crate::config::Config;
use crate::machines;
use crate::shard::{worker, ShardHandle};

/// Why the pipeline could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A state machine file is invalid (the validator's message).
    #[error(transparent)]
    Machines(#[from] machines::LoadError),
    /// A topic binding names a machine that is not deployed.
    #[error("input topic {topic:?} is bound to state machine {machine:?}, which is not in {dir}")]
    UnknownBinding {
        /// The topic.
        topic: String,
        /// The machine it names.
        machine: String,
        /// The state machine folder.
        dir: String,
    },
    /// The brokers cannot be reached.
    #[error("cannot reach Kafka at {brokers}: {reason}")]
    Unreachable {
        /// The bootstrap servers tried.
        brokers: String,
        /// librdkafka's error.
        reason: String,
    },
    /// Topics are missing and creating them is off.
    #[error("missing topics: {0} (create them, or set kafka.create_topics = true)")]
    MissingTopics(String),
    /// A Kafka client could not be created or used.
    #[error("kafka: {0}")]
    Kafka(String),
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The results producer hit a fatal error; the pipeline stopped so that a restart
    /// redoes the outputs it could not deliver.
    #[error("the results producer cannot go on ({0}); stopped without losing anything: restart stepstream (a supervisor's restart on failure suffices) and it goes on from the committed offsets")]
    ProducerFailed(String),
    /// The configuration is invalid (a logs level).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The definitions topic cannot be read or written.
    #[error(transparent)]
    Registry(#[from] definitions::RegistryError),
    /// A service started beside the pipeline (the API) cannot start.
    #[error("{0}")]
    Service(String),
}

fn kafka_err(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Kafka(e.to_string())
}

/// How `run` treats records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Run executions (the product).
    #[default]
    Execute,
    /// Copy requests to the results topic unchanged: the consume->produce ceiling for benchmarks.
    Passthrough,
}

/// Runs the pipeline against `brokers` until `stop` is set, then shuts down gracefully.
pub fn run(cfg: &Config, brokers: &str, stop: &AtomicBool) -> Result<(), PipelineError> {
    run_mode(cfg, brokers, stop, Mode::Execute)
}

/// [`run`] in a given mode.
pub fn run_mode(
    cfg: &Config,
    brokers: &str,
    stop: &AtomicBool,
    mode: Mode,
) -> Result<(), PipelineError> {
    run_with(cfg, brokers, stop, mode, Arc::new(AtomicBool::new(false)))
}

/// [`run_mode`], setting `assigned` once this process owns input partitions (the load
/// tool waits for it so that start-up is not counted as latency).
pub fn run_with(
    cfg: &Config,
    brokers: &str,
    stop: &AtomicBool,
    mode: Mode,
    assigned: Arc<AtomicBool>,
) -> Result<(), PipelineError> {
    run_with_service(cfg, brokers, stop, mode, assigned, None)
}

/// What a [`Service`] keeps running; dropped (which stops it) before the shards stop.
pub type Running = Box<dyn std::any::Any>;

/// Something started beside the pipeline once its shards run (the AWS API, which
/// `stepstream run` passes): it gets the definitions and the shards' queues.
pub type Service = Box<
    dyn FnOnce(
            &Config,
            &str,
            Arc<definitions::Registry>,
            Vec<crate::shard::Submitter>,
        ) -> Result<Option<Running>, String>
        + Send,
>;

/// [`run_with`], with a service started beside the pipeline (executing mode only).
pub fn run_with_service(
    cfg: &Config,
    brokers: &str,
    stop: &AtomicBool,
    mode: Mode,
    assigned: Arc<AtomicBool>,
    service: Option<Service>,
) -> Result<(), PipelineError> {
    let dir = &cfg.engine.state_machines_dir;
    let compiler = machines::Compiler::new(dir, &cfg.tasks)?.with_logs(&cfg.logs);
    // A broken definition in the folder stops start-up before anything connects.
    if dir.exists() {
        for (name, file, _, def) in machines::read_dir(dir)? {
            compiler.compile(&name, &def).map_err(|e| match e {
                machines::LoadError::Invalid { problems, .. } => {
                    machines::LoadError::Invalid { file, problems }
                }
                e => e,
            })?;
        }
    }
    ensure_topics(cfg, brokers)?;
    // Reads the definitions topic to its end and adds the folder's machines to it, so the
    // shards start with every machine of the group.
    let (registry, registry_thread) = definitions::Registry::start(cfg, brokers, compiler)?;
    let machines = registry.deployed();
    let deployed = machines.snapshot();
    if deployed.is_empty() {
        tracing::warn!(
            "stepstream: no state machine is deployed yet (none in {} or the definitions topic); \
             create one through the API",
            cfg.engine.state_machines_dir.display()
        );
    }
    let mut bindings = HashMap::new();
    for input in &cfg.inputs {
        if let Some(m) = &input.state_machine {
            if !deployed.contains_key(m) {
                return Err(PipelineError::UnknownBinding {
                    topic: input.topic.clone(),
                    machine: m.clone(),
                    dir: cfg.engine.state_machines_dir.display().to_string(),
                });
            }
            bindings.insert(input.topic.clone(), Arc::<str>::from(m.as_str()));
        }
    }
    drop(deployed);

    let offsets = Arc::new(Mutex::new(offsets::Offsets::default()));
    let (ack_tx, ack_rx) = crossbeam_channel::unbounded();
    let producer = sink::producer(cfg, brokers, ack_tx).map_err(kafka_err)?;
    let mut consumer_config = sink::consumer_config(cfg, brokers);
    // Held until the consumer is gone: the lock keeps a derived id ours.
    let instance = if consumer_config.get("group.instance.id").is_some() {
        None
    } else {
        match instance::resolve(&cfg.kafka.instance_id, &cfg.kafka.group_id) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!("stepstream: no static group membership ({e}); a restart will wait for the session timeout");
                None
            }
        }
    };
    if let Some(id) = &instance {
        consumer_config.set("group.instance.id", &id.id);
    }
    let membership = match consumer_config.get("group.instance.id") {
        Some(id) => format!("instance {id:?}"),
        None => "dynamic membership".to_string(),
    };
    let consumer: BaseConsumer<source::SourceContext> = consumer_config
        .create_with_context(source::SourceContext::new(
            Arc::clone(&offsets),
            ack_rx,
            Duration::from_secs(cfg.engine.shutdown_grace_seconds.min(5)),
            assigned,
            cfg.kafka.commit_metadata_max_bytes,
        ))
        .map_err(kafka_err)?;
    let topics: Vec<&str> = cfg.inputs.iter().map(|i| i.topic.as_str()).collect();
    consumer.subscribe(&topics).map_err(kafka_err)?;

    let shard_ctx = Arc::new(worker::ShardContext {
        machines,
        max_duration: Duration::from_secs(cfg.engine.execution_timeout_seconds),
        max_memory_bytes: cfg.engine.max_execution_memory_bytes,
        max_shard_memory_bytes: cfg.engine.max_shard_memory_bytes,
        history: observe::LogsWriter::new(cfg, brokers)
            .map(|w| Arc::new(w) as Arc<dyn crate::shard::HistoryWriter>),
    });
    let intake = Arc::new(intake::Intake {
        producer: producer.clone(),
        results_topic: cfg.topics.results.clone(),
        errors_topic: cfg.topics.errors.clone(),
        limits: request::RequestLimits {
            max_bytes: cfg.engine.max_request_bytes,
            max_depth: cfg.engine.max_request_depth,
        },
        passthrough: mode == Mode::Passthrough,
    });
    let max_in_flight = cfg.engine.max_in_flight_per_shard;
    let mut shards: Vec<ShardHandle> = (0..cfg.shard_count())
        .map(|i| worker::spawn(i, max_in_flight * 2 + 1024, Arc::clone(&shard_ctx)))
        .collect::<Result<_, _>>()?;
    let sampler = observe::start(cfg, brokers, &shards)?;
    let service = match (service, mode) {
        (Some(start), Mode::Execute) => start(
            cfg,
            brokers,
            Arc::clone(&registry),
            shards.iter().map(ShardHandle::submitter).collect(),
        )
        .map_err(PipelineError::Service)?,
        _ => None,
    };
    tracing::info!(
        "stepstream: ready ({} shards{}, consuming {} as group {:?}, {membership}, from {brokers})",
        shards.len(),
        if mode == Mode::Passthrough {
            ", passthrough mode"
        } else {
            ""
        },
        topics.join(", "),
        cfg.kafka.group_id
    );

    let settings = source::SourceSettings {
        bindings,
        max_in_flight,
        commit_interval: Duration::from_millis(cfg.kafka.commit_interval_ms),
        shutdown_grace: Duration::from_secs(cfg.engine.shutdown_grace_seconds),
        embedded_reads: embedded::reads_of(
            brokers,
            &topics,
            cfg.kafka.auto_offset_reset == "earliest",
        ),
        producer: Some(producer.clone()),
        intake,
    };
    source::run(&consumer, &shards, &offsets, &settings, stop);
    // Before the shards stop: the API holds their queues open and waits on their answers.
    drop(service);

    // Closing the queues lets each shard finish what it holds and exit.
    for s in &mut shards {
        let (closed, _) = crossbeam_channel::bounded(0);
        s.tx = closed;
        s.notify.notify_one();
    }
    for s in &mut shards {
        if let Some(t) = s.thread.take() {
            let _ = t.join();
        }
    }
    if let Err(e) = producer.flush(Duration::from_secs(30)) {
        tracing::error!("stepstream: flushing the producer failed: {e}");
    }
    consumer.unsubscribe();
    drop(consumer);
    drop(instance);
    drop(sampler);
    drop(registry_thread);
    if let Some(reason) = sink::fatal_error(&producer) {
        return Err(PipelineError::ProducerFailed(reason));
    }
    tracing::info!("stepstream: stopped");
    Ok(())
}

/// Fails fast when the brokers are unreachable; creates or reports missing topics.
fn ensure_topics(cfg: &Config, brokers: &str) -> Result<(), PipelineError> {
    let admin: AdminClient<DefaultClientContext> = sink::base_config(cfg, brokers)
        .create()
        .map_err(kafka_err)?;
    let meta = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| PipelineError::Unreachable {
            brokers: brokers.to_string(),
            reason: e.to_string(),
        })?;
    let existing: Vec<&str> = meta.topics().iter().map(|t| t.name()).collect();
    let mut wanted: Vec<&str> = cfg.inputs.iter().map(|i| i.topic.as_str()).collect();
    wanted.push(&cfg.topics.results);
    wanted.push(&cfg.topics.errors);
    // Only a process with a recorder writes metrics (not the load tool's in-process runs).
    if !cfg.metrics.topic.is_empty() && crate::metrics::handle().is_some() {
        wanted.push(&cfg.metrics.topic);
    }
    if cfg.logs.any_on() {
        wanted.push(&cfg.logs.topic);
    }
    let definitions = cfg.state_machines_topic();
    wanted.push(&definitions);
    wanted.sort_unstable();
    wanted.dedup();
    let missing: Vec<&str> = wanted
        .into_iter()
        .filter(|t| !existing.contains(t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !cfg.kafka.create_topics {
        return Err(PipelineError::MissingTopics(missing.join(", ")));
    }
    let record_limit = definitions::MAX_RECORD_BYTES.to_string();
    let new: Vec<NewTopic> = missing
        .iter()
        .map(|t| {
            if *t == definitions {
                // One partition: every process reads all of it anyway, in one order.
                NewTopic::new(t, 1, TopicReplication::Fixed(-1))
                    .set("cleanup.policy", "compact")
                    .set("max.message.bytes", &record_limit)
            } else {
                // -1: the broker's default replication factor.
                NewTopic::new(t, cfg.kafka.partitions, TopicReplication::Fixed(-1))
            }
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PipelineError::Thread)?;
    let results = rt
        .block_on(admin.create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .map_err(kafka_err)?;
    for r in results {
        match r {
            Ok(t) => tracing::info!(
                "stepstream: created topic {t} ({} partitions)",
                if t == definitions {
                    1
                } else {
                    cfg.kafka.partitions
                }
            ),
            Err((t, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::info!("stepstream: topic {t} already exists")
            }
            Err((t, e)) => {
                return Err(PipelineError::Kafka(format!(
                    "cannot create topic {t}: {e}"
                )))
            }
        }
    }
    Ok(())
}
