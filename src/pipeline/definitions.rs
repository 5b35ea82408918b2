//! The definitions topic: the state machines every process of a group runs.
//!
//! A compacted topic (`topics.state_machines`) holds one record per machine: key = name,
//! value = a [`DefinitionRecord`] (the definition and AWS's metadata), a tombstone (null
//! value) = deleted. Every process reads it from the beginning with a consumer of its own
//! (assigned partitions, no group, no commits), compiles each record and deploys it to the
//! shards ([`Deployed`]); a record that does not validate is logged and skipped, so it never
//! replaces a machine that works. The API writes through the topic and waits until its own
//! consumer has applied the record, so what it answers is what the shards run, and a machine
//! made on one process runs on all of them.
//!
//! At start-up the process first reads the topic to its end, then writes the folder's
//! definitions (`engine.state_machines_dir`) into it: a name the topic does not hold, or holds
//! from a folder with another definition, is written; a name last written through the API
//! is left alone (the API's version is the newer intent), and so is an identical one. A
//! folder machine deleted through the API is therefore back at the next start while its file
//! is there.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::sink;
use crate::config::Config;
use crate::machines::{Compiler, Deployed, LoadError, Machines};

/// Longest definition AWS accepts, in characters.
pub const MAX_DEFINITION_CHARS: usize = 1_048_576;

/// Largest record of the topic (a definition with its metadata, as JSON); larger records
/// are skipped unread. Also the topic's `max.message.bytes`.
pub const MAX_RECORD_BYTES: usize = 4 << 20;

/// How long a write may take to reach the topic and come back through the consumer.
const APPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// Who wrote a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The API (CreateStateMachine, UpdateStateMachine).
    Api,
    /// A process's state machine folder at start-up.
    Config,
}

/// One machine as the topic holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionRecord {
    /// The machine's name (also the record key).
    pub name: String,
    /// The definition as the user wrote it.
    pub definition: String,
    /// The role AWS would run it with (kept, not used).
    pub role_arn: String,
    /// `EXPRESS` (the only type stepstream runs).
    #[serde(rename = "type")]
    pub kind: String,
    /// Seconds since the epoch.
    pub creation_date: f64,
    /// Seconds since the epoch of the last change.
    pub update_date: f64,
    /// Changes with every update.
    pub revision_id: String,
    /// Who wrote it.
    pub origin: Origin,
    /// A description (UpdateStateMachine's `description`, AWS's versions feature).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// AWS's `loggingConfiguration`, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging_configuration: Option<serde_json::Value>,
    /// AWS's `tracingConfiguration`, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing_configuration: Option<serde_json::Value>,
}

/// Why the registry cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Kafka refused or timed out.
    #[error("definitions topic {topic}: {reason}")]
    Kafka {
        /// The topic.
        topic: String,
        /// What went wrong.
        reason: String,
    },
    /// A folder definition is invalid.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// The machines of the definitions topic, as this process has read them.
pub struct Registry {
    topic: String,
    deployed: Arc<Deployed>,
    compiler: Arc<Compiler>,
    records: Mutex<BTreeMap<String, DefinitionRecord>>,
    /// Next offset to read, per partition.
    applied: Mutex<HashMap<i32, i64>>,
    changed: tokio::sync::watch::Sender<u64>,
    producer: FutureProducer,
    stop: AtomicBool,
}

/// The consumer thread; stops it when dropped.
pub struct RegistryThread {
    registry: Arc<Registry>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for RegistryThread {
    fn drop(&mut self) {
        self.registry.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn kafka(topic: &str, reason: impl std::fmt::Display) -> RegistryError {
    RegistryError::Kafka {
        topic: topic.to_string(),
        reason: reason.to_string(),
    }
}

/// Seconds since the epoch with milliseconds, as AWS's JSON protocol writes dates.
pub fn epoch_seconds(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

impl Registry {
    /// Reads the topic to its end, writes the folder's definitions into it, and keeps
    /// reading on a thread of its own.
    pub fn start(
        cfg: &Config,
        brokers: &str,
        compiler: Compiler,
    ) -> Result<(Arc<Registry>, RegistryThread), RegistryError> {
        let topic = cfg.state_machines_topic();
        let mut c = sink::base_config(cfg, brokers);
        // librdkafka wants a group even for assigned partitions; nothing joins or commits it.
        c.set(
            "group.id",
            format!("{}.definitions-reader", cfg.kafka.group_id),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.message.max.bytes", MAX_RECORD_BYTES.to_string());
        if let Some(v) = cfg.kafka.consumer_properties.get("fetch.wait.max.ms") {
            c.set("fetch.wait.max.ms", v);
        } else {
            // A new definition should be known everywhere within a second.
            c.set("fetch.wait.max.ms", "100");
        }
        let consumer: BaseConsumer = c.create().map_err(|e| kafka(&topic, e))?;
        // A topic created a moment ago may take a while to show in metadata with leaders.
        let deadline = Instant::now() + Duration::from_secs(30);
        let partitions: Vec<i32> = loop {
            let meta = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .map_err(|e| kafka(&topic, e))?;
            let found: Vec<i32> = meta
                .topics()
                .iter()
                .filter(|t| t.name() == topic && t.error().is_none())
                .flat_map(|t| t.partitions().iter())
                .filter(|p| p.leader() >= 0)
                .map(|p| p.id())
                .collect();
            if !found.is_empty() {
                break found;
            }
            if Instant::now() > deadline {
                return Err(kafka(&topic, "the topic does not exist (or has no leader)"));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut tpl = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for &p in &partitions {
            tpl.add_partition_offset(&topic, p, Offset::Beginning)
                .map_err(|e| kafka(&topic, e))?;
            // A new topic's leader may not serve it yet (NotLeaderForPartition): retried.
            let high = loop {
                match consumer.fetch_watermarks(&topic, p, Duration::from_secs(10)) {
                    Ok((_, high)) => break high,
                    Err(e) if Instant::now() > deadline => return Err(kafka(&topic, e)),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            };
            ends.insert(p, high);
        }
        consumer.assign(&tpl).map_err(|e| kafka(&topic, e))?;

        let mut p = sink::base_config(cfg, brokers);
        p.set("acks", "all")
            .set("compression.type", "zstd")
            .set("linger.ms", "0")
            .set("message.max.bytes", MAX_RECORD_BYTES.to_string())
            .set("message.timeout.ms", "10000");
        let producer: FutureProducer = p.create().map_err(|e| kafka(&topic, e))?;
        let (changed, _) = tokio::sync::watch::channel(0);
        let registry = Arc::new(Registry {
            topic: topic.clone(),
            deployed: Arc::new(Deployed::new(Machines::new())),
            compiler: Arc::new(compiler),
            records: Mutex::new(BTreeMap::new()),
            applied: Mutex::new(HashMap::new()),
            changed,
            producer,
            stop: AtomicBool::new(false),
        });

        let mut reader = Reader {
            registry: Arc::clone(&registry),
            machines: Machines::new(),
        };
        // Read what is there before anything runs, so that no request meets a machine
        // the group already has as unknown.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let behind = ends.iter().any(|(p, &high)| {
                let next = registry.next_offset(*p);
                high > 0 && next < high
            });
            if !behind {
                break;
            }
            if Instant::now() > deadline {
                return Err(kafka(&topic, "not read to its end within 60 s"));
            }
            reader.poll_batch(&consumer);
        }
        reader.publish();
        let thread = {
            let registry = Arc::clone(&registry);
            std::thread::Builder::new()
                .name("definitions".into())
                .spawn(move || {
                    while !registry.stop.load(Ordering::Relaxed) {
                        reader.poll_batch(&consumer);
                    }
                })
                .map_err(|e| kafka(&topic, e))?
        };
        let handle = RegistryThread {
            registry: Arc::clone(&registry),
            thread: Some(thread),
        };
        registry.seed(&cfg.engine.state_machines_dir)?;
        Ok((registry, handle))
    }

    /// What the shards run.
    pub fn deployed(&self) -> Arc<Deployed> {
        Arc::clone(&self.deployed)
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// One machine's record.
    pub fn get(&self, name: &str) -> Option<DefinitionRecord> {
        self.records().get(name).cloned()
    }

    /// Whether a machine of this name is deployed.
    pub fn contains(&self, name: &str) -> bool {
        self.records().contains_key(name)
    }

    /// Every machine's record, by name, from `after` (exclusive), at most `limit`.
    pub fn list(&self, after: Option<&str>, limit: usize) -> (Vec<DefinitionRecord>, bool) {
        let records = self.records();
        let mut it = records
            .iter()
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
            .map(|(_, v)| v.clone());
        let page: Vec<_> = it.by_ref().take(limit).collect();
        let more = it.next().is_some();
        (page, more)
    }

    /// Compiles a definition as the consumers will, to refuse it before it is written.
    pub fn check(&self, name: &str, def: &serde_json::Value) -> Result<(), LoadError> {
        self.compiler.compile(name, def).map(|_| ())
    }

    /// Compiles a machine TestState builds (bound like API machines: real tasks, no file).
    pub fn compile_test(
        &self,
        def: &serde_json::Value,
    ) -> Result<crate::machines::Machine, LoadError> {
        // A name no machine can have (names may not contain ':'), so no folder file binds it.
        self.compiler.compile("stepstream:test-state", def)
    }

    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, DefinitionRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_offset(&self, partition: i32) -> i64 {
        let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        applied.get(&partition).copied().unwrap_or(0)
    }

    /// Writes a record (or, with `None`, a tombstone) and waits until this process runs it.
    pub async fn write(&self, name: &str, record: Option<&DefinitionRecord>) -> Result<(), String> {
        let payload = record.map(|r| serde_json::to_vec(r).expect("a record serializes"));
        let mut out = FutureRecord::<str, [u8]>::to(&self.topic).key(name);
        if let Some(p) = &payload {
            out = out.payload(p);
        }
        let (partition, offset) = match self.producer.send(out, Timeout::After(APPLY_TIMEOUT)).await
        {
            Ok(delivery) => (delivery.partition, delivery.offset),
            Err((e, _)) => return Err(format!("the definitions topic refused the write: {e}")),
        };
        let mut seen = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + APPLY_TIMEOUT;
        while self.next_offset(partition) <= offset {
            match tokio::time::timeout_at(deadline, seen.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(format!(
                        "the write to the definitions topic was not read back within {} s",
                        APPLY_TIMEOUT.as_secs()
                    ))
                }
            }
        }
        Ok(())
    }

    /// Writes the folder's definitions the topic lacks or holds from an older folder.
    fn seed(&self, dir: &std::path::Path) -> Result<(), RegistryError> {
        let defs = match crate::machines::read_dir(dir) {
            Ok(defs) => defs,
            // No folder is no machines of its own: they may all come from the topic.
            Err(LoadError::Dir { .. }) if !dir.exists() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let now = epoch_seconds(chrono::Utc::now());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| kafka(&self.topic, e))?;
        for (name, file, text, def) in defs {
            self.compiler.compile(&name, &def).map_err(|e| match e {
                LoadError::Invalid { problems, .. } => LoadError::Invalid {
                    file: file.clone(),
                    problems,
                },
                e => e,
            })?;
            let held = self.get(&name);
            let write = match &held {
                None => true,
                Some(r) => r.origin == Origin::Config && r.definition != text,
            };
            if !write {
                if held.is_some_and(|r| r.origin == Origin::Api) {
                    tracing::info!(
                        "stepstream: state machine {name:?} was last written through the API; \
                         the topic's version runs, not {file}"
                    );
                }
                continue;
            }
            let record = DefinitionRecord {
                name: name.clone(),
                definition: text,
                role_arn: DEFAULT_ROLE_ARN.into(),
                kind: "EXPRESS".into(),
                creation_date: held.as_ref().map_or(now, |r| r.creation_date),
                update_date: now,
                revision_id: crate::pipeline::result::new_uuid().to_string(),
                origin: Origin::Config,
                description: String::new(),
                logging_configuration: None,
                tracing_configuration: None,
            };
            rt.block_on(self.write(&name, Some(&record)))
                .map_err(|e| kafka(&self.topic, e))?;
        }
        Ok(())
    }
}

/// The role ARN of machines that come from the folder.
pub const DEFAULT_ROLE_ARN: &str = "arn:aws:iam::000000000000:role/stepstream";

/// The consumer side: reads records, compiles them, deploys them.
struct Reader {
    registry: Arc<Registry>,
    /// What this reader deployed last, changed record by record and published per batch.
    machines: Machines,
}

impl Reader {
    /// Applies what one poll brings, up to a batch, and deploys it.
    fn poll_batch(&mut self, consumer: &BaseConsumer) {
        let mut applied = 0;
        let mut timeout = Duration::from_millis(100);
        while applied < 256 {
            match consumer.poll(timeout) {
                None => break,
                Some(Err(e)) => {
                    tracing::warn!(
                        "stepstream: reading the definitions topic {}: {e}",
                        self.registry.topic
                    );
                    break;
                }
                Some(Ok(m)) => {
                    self.apply(m.key(), m.payload(), m.partition(), m.offset());
                    let mut positions = self
                        .registry
                        .applied
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    positions.insert(m.partition(), m.offset() + 1);
                    applied += 1;
                    timeout = Duration::ZERO;
                }
            }
        }
        if applied > 0 {
            self.publish();
        }
    }

    fn publish(&self) {
        self.registry.deployed.replace(self.machines.clone());
        self.registry.changed.send_modify(|n| *n += 1);
    }

    fn apply(&mut self, key: Option<&[u8]>, payload: Option<&[u8]>, partition: i32, offset: i64) {
        let at = format!("{}/{partition}@{offset}", self.registry.topic);
        let Some(name) = key.and_then(|k| std::str::from_utf8(k).ok()) else {
            tracing::warn!("stepstream: definitions record {at} has no UTF-8 key; skipped");
            return;
        };
        let Some(payload) = payload else {
            self.machines.remove(name);
            self.registry.records().remove(name);
            tracing::info!("stepstream: state machine {name:?} deleted ({at})");
            return;
        };
        match self.compile(name, payload) {
            Ok((record, machine)) => {
                self.machines.insert(name.to_string(), Arc::new(machine));
                self.registry.records().insert(name.to_string(), record);
                tracing::info!("stepstream: state machine {name:?} deployed ({at})");
            }
            Err(why) => tracing::warn!(
                "stepstream: definitions record {at} for {name:?} not deployed ({why}); \
                 the previous version, if any, keeps running"
            ),
        }
    }

    fn compile(
        &self,
        name: &str,
        payload: &[u8],
    ) -> Result<(DefinitionRecord, crate::machines::Machine), String> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(format!("{} bytes, over {MAX_RECORD_BYTES}", payload.len()));
        }
        let record: DefinitionRecord =
            serde_json::from_slice(payload).map_err(|e| format!("not a definition record: {e}"))?;
        if record.name != name {
            return Err(format!("the record names {:?}", record.name));
        }
        crate::pipeline::request::check_name(name).map_err(|e| format!("bad name: {e}"))?;
        if record.kind != "EXPRESS" {
            return Err(format!("type {}, not EXPRESS", record.kind));
        }
        if record.definition.chars().count() > MAX_DEFINITION_CHARS {
            return Err(format!(
                "a definition over {MAX_DEFINITION_CHARS} characters"
            ));
        }
        let def: serde_json::Value = serde_json::from_str(&record.definition)
            .map_err(|e| format!("the definition is not JSON: {e}"))?;
        let machine = self
            .registry
            .compiler
            .compile(name, &def)
            .map_err(|e| e.to_string())?;
        Ok((record, machine))
    }
}
