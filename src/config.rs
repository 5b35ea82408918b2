//! The `stepstream run` configuration: a TOML file, every key overridable by environment.
//!
//! `STEPSTREAM_<SECTION>_<KEY>` overrides `[section] key` (e.g. `STEPSTREAM_KAFKA_BROKERS`,
//! `STEPSTREAM_ENGINE_SHARDS`); `STEPSTREAM_KAFKA_PROPERTY_<NAME>` sets a client property,
//! with `_` in NAME read as `.` (`STEPSTREAM_KAFKA_PROPERTY_SECURITY_PROTOCOL=ssl`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The longest metadata text written per partition by default (`kafka.commit_metadata_max_bytes`).
/// Brokers refuse a commit whose metadata exceeds `offset.metadata.max.bytes` (4096 by
/// default), so stay below it.
pub const MAX_METADATA: usize = 4000;

/// Bytes a dead letter takes besides its `original`/`originalBase64` text: error, cause
/// (cut to fit), source, sizes, digest, field names and the few extra fields of a refused
/// output. `[output] dead_letter_max_original_bytes` plus this stays under the producer's limit.
pub const DEAD_LETTER_ENVELOPE_BYTES: usize = 4096;

/// Properties consumers of the embedded broker should set (`pipeline::embedded` says why).
pub const EMBEDDED_CONSUMER_PROPERTIES: &[(&str, &str)] = &[("fetch.wait.max.ms", "5")];

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has wrong keys or types.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the TOML parser said.
        message: String,
    },
    /// An environment override has a value of the wrong type.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("config: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the brokers are and how to talk to them.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Output topics.
    #[serde(default)]
    pub topics: TopicsConfig,
    /// Input topics and what their records mean.
    #[serde(default = "default_inputs")]
    pub inputs: Vec<InputConfig>,
    /// Executor settings.
    #[serde(default)]
    pub engine: EngineConfig,
    /// How Task states reach real services (Lambda, HTTP): endpoints, allow-list, limits.
    #[serde(default)]
    pub tasks: crate::tasks::TasksConfig,
    /// What the output records may hold.
    #[serde(default)]
    pub output: OutputConfig,
    /// The Prometheus endpoint and the metrics topic.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Operational logs (stderr).
    #[serde(default)]
    pub log: LogConfig,
    /// Execution history events (Step Functions' Express logging) to a logs topic.
    #[serde(default)]
    pub logs: LogsConfig,
    /// The AWS Step Functions API over HTTP.
    #[serde(default)]
    pub api: ApiConfig,
}

/// The AWS Step Functions JSON API (`aws stepfunctions --endpoint-url ...`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// `host:port` it listens on (port 0: any free port, logged at start-up), or `"off"`.
    #[serde(default = "default_api_listen")]
    pub listen: String,
    /// Access key id -> secret access key. Empty: requests are accepted signed or not;
    /// otherwise each needs a valid SigV4 signature by one of these keys.
    #[serde(default)]
    pub access_keys: BTreeMap<String, String>,
    /// Most connections open at once; more wait to be accepted.
    #[serde(default = "default_api_max_connections")]
    pub max_connections: usize,
    /// Whether TestState's `revealSecrets: true` may show the headers and query parameters
    /// `[[tasks.http.connections]]` add (AWS asks for the states:RevealSecrets permission);
    /// when false such a request gets AccessDeniedException.
    #[serde(default)]
    pub reveal_secrets: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        toml::from_str("").expect("every api key has a default")
    }
}

fn default_api_listen() -> String {
    "127.0.0.1:8083".into()
}

fn default_api_max_connections() -> usize {
    1024
}

/// Which executions log their history events, and where to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// Topic that gets one record per event, keyed by the execution's ARN.
    #[serde(default = "default_logs_topic")]
    pub topic: String,
    /// Level of machines not listed below: `ALL`, `ERROR`, `FATAL` or `OFF` (the default).
    #[serde(default = "default_logs_level")]
    pub level: String,
    /// Whether events carry inputs, outputs and task parameters (machines not listed below).
    #[serde(default)]
    pub include_execution_data: bool,
    /// Per state machine, by name: its own level and includeExecutionData.
    #[serde(default)]
    pub state_machines: std::collections::BTreeMap<String, MachineLogsConfig>,
}

/// One state machine's logging (`[logs.state_machines.NAME]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineLogsConfig {
    /// `ALL`, `ERROR`, `FATAL` or `OFF`; the `[logs]` level when absent.
    pub level: Option<String>,
    /// The `[logs]` setting when absent.
    pub include_execution_data: Option<bool>,
}

impl LogsConfig {
    /// State machine `machine`'s settings.
    pub fn settings(&self, machine: &str) -> Result<crate::exec::LogSettings, ConfigError> {
        let own = self.state_machines.get(machine);
        let level_text = own.and_then(|m| m.level.as_deref()).unwrap_or(&self.level);
        let level = crate::exec::LogLevel::parse(level_text).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "logs level {level_text:?} (for {machine:?}) must be ALL, ERROR, FATAL or OFF"
            ))
        })?;
        Ok(crate::exec::LogSettings {
            level,
            include_execution_data: own
                .and_then(|m| m.include_execution_data)
                .unwrap_or(self.include_execution_data),
        })
    }

    /// Whether any state machine may log.
    pub fn any_on(&self) -> bool {
        let on = |l: &str| !l.eq_ignore_ascii_case("OFF");
        on(&self.level)
            || self
                .state_machines
                .values()
                .any(|m| m.level.as_deref().is_some_and(on))
    }
}

impl Default for LogsConfig {
    fn default() -> Self {
        toml::from_str("").expect("every logs key has a default")
    }
}

/// Where the process's metrics go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` that serves `/metrics` for Prometheus, or `"off"`.
    #[serde(default = "default_metrics_listen")]
    pub listen: String,
    /// Topic that gets one JSON record of all metrics per interval; empty: none.
    #[serde(default = "default_metrics_topic")]
    pub topic: String,
    /// Seconds between two records on the metrics topic (and between two lag samples).
    #[serde(default = "default_metrics_interval")]
    pub interval_seconds: u64,
}

/// How operational logs are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `"text"` (for people) or `"json"` (one object per line, for log collectors).
    #[serde(default = "default_log_format")]
    pub format: String,
    /// Lowest level written (`error`, `warn`, `info`, `debug`, `trace`) or a full
    /// `RUST_LOG`-style filter; `RUST_LOG`, when set, wins.
    #[serde(default = "default_log_level")]
    pub level: String,
}

/// What the output records (results, dead letters) may hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Most bytes of a rejected record's original value a dead letter carries (as JSON
    /// text: escapes and base64 count); the rest is summed up by size and SHA-256.
    #[serde(default = "default_dead_letter_max_original")]
    pub dead_letter_max_original_bytes: usize,
}

/// Broker connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers (`host:port,...`); empty starts an embedded broker for a demo.
    #[serde(default)]
    pub brokers: String,
    /// Consumer group: run more processes with the same group to scale out.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Create missing topics at start-up (otherwise a missing topic stops start-up).
    #[serde(default = "default_true")]
    pub create_topics: bool,
    /// Partitions of topics created at start-up.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Where a new consumer group starts reading: `earliest` or `latest`.
    #[serde(default = "default_offset_reset")]
    pub auto_offset_reset: String,
    /// How often acknowledged offsets are committed, in milliseconds. A crash repeats what
    /// finished since the last commit, so this bounds the duplicates (one small async
    /// OffsetCommit per interval).
    #[serde(default = "default_commit_interval")]
    pub commit_interval_ms: u64,
    /// librdkafka client properties passed through unchanged (`security.protocol`, `sasl.*`, `ssl.*`, ...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties for the input consumer only (`fetch.min.bytes`, `fetch.wait.max.ms`, ...).
    #[serde(default)]
    pub consumer_properties: BTreeMap<String, String>,
    /// Static group membership (`group.instance.id`): `"auto"` derives `<host>-<slot>`, stable
    /// across restarts of a process; `"none"` uses dynamic membership; anything else is the id.
    #[serde(default = "default_instance_id")]
    pub instance_id: String,
    /// Longest offset-commit metadata per partition (the acknowledged offsets above the
    /// commit); keep it below the brokers' `offset.metadata.max.bytes` (4096 by default),
    /// which refuses longer ones; 0 writes none.
    #[serde(default = "default_commit_metadata_max_bytes")]
    pub commit_metadata_max_bytes: usize,
}

/// Output topics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// One record per execution, keyed like its request.
    #[serde(default = "default_results")]
    pub results: String,
    /// Dead letters: requests that could not start.
    #[serde(default = "default_errors")]
    pub errors: String,
    /// The compacted topic of state machine definitions (key = name) every process of the
    /// group reads; empty: `<kafka.group_id>.state-machines`.
    #[serde(default)]
    pub state_machines: String,
}

/// One input topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// The topic name.
    pub topic: String,
    /// Bind the topic to one state machine: the whole record value is then the execution input.
    /// Without it, records are envelopes `{"stateMachine", "name", "input"}`.
    #[serde(default)]
    pub state_machine: Option<String>,
}

/// Executor settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Folder of `*.asl.json` definitions, validated and compiled at start; the file stem is the name.
    #[serde(default = "default_state_machines")]
    pub state_machines_dir: PathBuf,
    /// Executor threads (0 = one per core).
    #[serde(default)]
    pub shards: usize,
    /// How many executions one shard may hold before its partitions are paused.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight_per_shard: usize,
    /// Express execution time cap, in seconds.
    #[serde(default = "default_execution_timeout")]
    pub execution_timeout_seconds: u64,
    /// Largest request value accepted, in bytes (AWS: 256 KiB).
    #[serde(default = "default_max_request")]
    pub max_request_bytes: usize,
    /// Deepest JSON nesting accepted in a request.
    #[serde(default = "default_max_depth")]
    pub max_request_depth: usize,
    /// On SIGINT/SIGTERM, how long in-flight executions may take to finish, in seconds.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_seconds: u64,
    /// Most data one execution may hold at once, in bytes (its running frames' data and
    /// variables, Map and Parallel outputs being collected); past it the execution fails with
    /// States.DataLimitExceeded instead of the process running out of memory.
    #[serde(default = "default_max_execution_memory")]
    pub max_execution_memory_bytes: usize,
    /// Most data all executions of one shard may hold together, in bytes; an execution
    /// that would take the shard past it fails with States.DataLimitExceeded.
    #[serde(default = "default_max_shard_memory")]
    pub max_shard_memory_bytes: usize,
}

fn default_true() -> bool {
    true
}
fn default_group() -> String {
    "stepstream".into()
}
fn default_partitions() -> i32 {
    4
}
fn default_offset_reset() -> String {
    "earliest".into()
}
fn default_commit_metadata_max_bytes() -> usize {
    MAX_METADATA
}
fn default_instance_id() -> String {
    "auto".into()
}
fn default_commit_interval() -> u64 {
    100
}
fn default_results() -> String {
    "stepstream.results".into()
}
fn default_errors() -> String {
    "stepstream.errors".into()
}
fn default_inputs() -> Vec<InputConfig> {
    vec![InputConfig {
        topic: "stepstream.requests".into(),
        state_machine: None,
    }]
}
fn default_state_machines() -> PathBuf {
    PathBuf::from("config/state-machines")
}
fn default_max_in_flight() -> usize {
    10_000
}
fn default_execution_timeout() -> u64 {
    300
}
fn default_max_request() -> usize {
    256 * 1024
}
fn default_max_depth() -> usize {
    64
}
fn default_shutdown_grace() -> u64 {
    30
}
fn default_dead_letter_max_original() -> usize {
    64 * 1024
}

fn default_metrics_listen() -> String {
    "127.0.0.1:9464".into()
}
fn default_logs_topic() -> String {
    "stepstream.logs".into()
}
fn default_logs_level() -> String {
    "OFF".into()
}
fn default_metrics_topic() -> String {
    "stepstream.metrics".into()
}
fn default_metrics_interval() -> u64 {
    10
}
fn default_log_format() -> String {
    "text".into()
}
fn default_log_level() -> String {
    "info".into()
}

/// librdkafka's default `message.max.bytes`, the producer's record limit when not configured.
const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;
fn default_max_execution_memory() -> usize {
    crate::exec::DEFAULT_MAX_EXECUTION_MEMORY_BYTES
}
fn default_max_shard_memory() -> usize {
    crate::exec::DEFAULT_MAX_SHARD_MEMORY_BYTES
}

impl Default for KafkaConfig {
    fn default() -> Self {
        toml::from_str("").expect("every kafka key has a default")
    }
}

impl Default for TopicsConfig {
    fn default() -> Self {
        toml::from_str("").expect("every topics key has a default")
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        toml::from_str("").expect("every engine key has a default")
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        toml::from_str("").expect("every output key has a default")
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        toml::from_str("").expect("every metrics key has a default")
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        toml::from_str("").expect("every log key has a default")
    }
}

impl Default for Config {
    fn default() -> Self {
        toml::from_str("").expect("every key has a default")
    }
}

impl KafkaConfig {
    /// The pass-through client properties as owned pairs.
    pub fn property_pairs(&self) -> Vec<(String, String)> {
        self.properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Adds the consumer settings the embedded broker needs, unless the user set them.
    pub fn use_embedded_consumer_settings(&mut self) {
        // The embedded broker lives and dies with this process: a restarted process finds a
        // new broker, so a stable membership id buys nothing there.
        if self.instance_id == "auto" {
            self.instance_id = "none".into();
        }
        for (k, v) in EMBEDDED_CONSUMER_PROPERTIES {
            self.consumer_properties
                .entry(k.to_string())
                .or_insert_with(|| v.to_string());
        }
    }
}

impl Config {
    /// Reads a config file (or the defaults when `path` is `None`), then applies environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (text, name) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?,
                p.display().to_string(),
            ),
            None => (String::new(), "(defaults)".to_string()),
        };
        let mut doc: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: name.clone(),
                    message: e.to_string(),
                })?;
        apply_env(&mut doc, std::env::vars())?;
        let cfg: Config = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: name,
                message: e.to_string(),
            })?;
        cfg.check()?;
        let mut cfg = cfg;
        // kafka:produce tasks write to the pipeline's cluster unless told otherwise.
        if cfg.tasks.kafka.brokers.is_empty() {
            cfg.tasks.kafka.brokers = cfg.kafka.brokers.clone();
            if cfg.tasks.kafka.properties.is_empty() {
                cfg.tasks.kafka.properties = cfg.kafka.properties.clone();
            }
        }
        // states:startExecution starts children where this pipeline reads envelopes.
        if cfg.tasks.kafka.requests_topic.is_none() {
            cfg.tasks.kafka.requests_topic = cfg
                .inputs
                .iter()
                .find(|i| i.state_machine.is_none())
                .map(|i| i.topic.clone());
        }
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.inputs.is_empty() {
            return Err(ConfigError::Invalid(
                "at least one [[inputs]] topic is needed".into(),
            ));
        }
        if self.engine.max_in_flight_per_shard == 0 {
            return Err(ConfigError::Invalid(
                "engine.max_in_flight_per_shard must be at least 1".into(),
            ));
        }
        if !["earliest", "latest"].contains(&self.kafka.auto_offset_reset.as_str()) {
            return Err(ConfigError::Invalid(
                "kafka.auto_offset_reset must be \"earliest\" or \"latest\"".into(),
            ));
        }
        self.tasks.check().map_err(ConfigError::Invalid)?;
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err(ConfigError::Invalid(
                "log.format must be \"text\" or \"json\"".into(),
            ));
        }
        if self.metrics.interval_seconds == 0 {
            return Err(ConfigError::Invalid(
                "metrics.interval_seconds must be at least 1".into(),
            ));
        }
        if self.metrics.listen != "off"
            && self.metrics.listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError::Invalid(format!(
                "metrics.listen must be host:port (an IP address) or \"off\", not {:?}",
                self.metrics.listen
            )));
        }
        self.logs.settings("")?;
        for name in self.logs.state_machines.keys() {
            self.logs.settings(name)?;
        }
        if self.logs.any_on() && self.logs.topic.is_empty() {
            return Err(ConfigError::Invalid(
                "logs.topic is empty but a logs level is on".into(),
            ));
        }
        self.check_dead_letter_size()
    }

    /// A dead letter must always fit the producer, with room to spare: it is what a record
    /// the producer refused turns into, and a refused dead letter stalls nothing but is lost.
    fn check_dead_letter_size(&self) -> Result<(), ConfigError> {
        let limit = match self.kafka.properties.get("message.max.bytes") {
            None => LIBRDKAFKA_MESSAGE_MAX_BYTES,
            Some(v) => v.trim().parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "kafka.properties.\"message.max.bytes\" = {v:?} is not a number of bytes"
                ))
            })?,
        };
        let most = (limit / 2).saturating_sub(DEAD_LETTER_ENVELOPE_BYTES);
        let cap = self.output.dead_letter_max_original_bytes;
        if cap > most {
            return Err(ConfigError::Invalid(format!(
                "output.dead_letter_max_original_bytes = {cap} is too large for the producer's \
                 message.max.bytes = {limit}: at most {most} (half the limit, less {} bytes \
                 for the rest of the dead letter)",
                DEAD_LETTER_ENVELOPE_BYTES
            )));
        }
        Ok(())
    }

    /// Shards to run: the configured number, or one per core.
    pub fn shard_count(&self) -> usize {
        match self.engine.shards {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The definitions topic's name.
    pub fn state_machines_topic(&self) -> String {
        match self.topics.state_machines.trim() {
            "" => format!("{}.state-machines", self.kafka.group_id),
            t => t.to_string(),
        }
    }
}

const SECTIONS: [&str; 8] = [
    "kafka", "topics", "engine", "output", "metrics", "log", "logs", "api",
];

/// Applies `STEPSTREAM_*` variables to the parsed document.
fn apply_env(
    doc: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (var, value) in vars {
        let Some(rest) = var.strip_prefix("STEPSTREAM_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        if let Some(prop) = rest.strip_prefix("kafka_property_") {
            let table = section(doc, "kafka");
            let props = table
                .entry("properties")
                .or_insert_with(|| toml::Value::Table(Default::default()));
            if let toml::Value::Table(t) = props {
                t.insert(prop.replace('_', "."), toml::Value::String(value));
            }
            continue;
        }
        let Some((sec, key)) = SECTIONS
            .iter()
            .find_map(|s| rest.strip_prefix(&format!("{s}_")).map(|k| (*s, k)))
        else {
            continue;
        };
        // Numbers and booleans are parsed as TOML values; anything else is a string.
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(|v| !v.is_table() && !v.is_array())
            .unwrap_or(toml::Value::String(value.clone()));
        if key.is_empty() {
            return Err(ConfigError::Env {
                var,
                message: "names no key".into(),
            });
        }
        section(doc, sec).insert(key.to_string(), parsed);
    }
    Ok(())
}

fn section<'a>(doc: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
    let v = doc
        .entry(name)
        .or_insert_with(|| toml::Value::Table(Default::default()));
    if !v.is_table() {
        *v = toml::Value::Table(Default::default());
    }
    v.as_table_mut().expect("just made a table")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_without_a_file() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.kafka.brokers, "");
        assert_eq!(c.inputs[0].topic, "stepstream.requests");
        assert_eq!(c.engine.max_in_flight_per_shard, 10_000);
    }

    #[test]
    fn env_overrides_keys_and_properties() {
        let mut doc: toml::Table = "[kafka]\nbrokers = \"a:1\"".parse().unwrap();
        let vars = [
            ("STEPSTREAM_KAFKA_BROKERS", "b:2"),
            ("STEPSTREAM_ENGINE_SHARDS", "3"),
            ("STEPSTREAM_KAFKA_PROPERTY_SECURITY_PROTOCOL", "ssl"),
            ("UNRELATED", "x"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()));
        apply_env(&mut doc, vars).unwrap();
        let c: Config = toml::Value::Table(doc).try_into().unwrap();
        assert_eq!(c.kafka.brokers, "b:2");
        assert_eq!(c.engine.shards, 3);
        assert_eq!(c.kafka.properties["security.protocol"], "ssl");
    }

    #[test]
    fn dead_letter_cap_must_stay_well_below_the_producer_limit() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.output.dead_letter_max_original_bytes, 64 * 1024);
        assert!(c.check().is_ok());
        let big: Config =
            toml::from_str("[output]\ndead_letter_max_original_bytes = 600000").unwrap();
        let e = big.check().unwrap_err().to_string();
        assert!(e.contains("dead_letter_max_original_bytes"), "{e}");
        let small_producer: Config =
            toml::from_str("[kafka.properties]\n\"message.max.bytes\" = \"100000\"").unwrap();
        assert!(
            small_producer.check().is_err(),
            "64 KiB does not fit half of 100 kB"
        );
        let fits: Config = toml::from_str(
            "[kafka.properties]\n\"message.max.bytes\" = \"100000\"\n[output]\ndead_letter_max_original_bytes = 40000",
        )
        .unwrap();
        assert!(fits.check().is_ok());
        let nonsense: Config =
            toml::from_str("[kafka.properties]\n\"message.max.bytes\" = \"lots\"").unwrap();
        assert!(nonsense.check().is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<Config>("[engine]\nshardz = 2").is_err());
    }

    #[test]
    fn metrics_and_log_settings_are_checked() {
        let parse = |t: &str| toml::from_str::<Config>(t).unwrap().check();
        assert!(parse("[metrics]\nlisten = \"off\"").is_ok());
        assert!(parse("[metrics]\nlisten = \"0.0.0.0:9464\"").is_ok());
        assert!(parse("[metrics]\nlisten = \"localhost\"").is_err());
        assert!(parse("[metrics]\ninterval_seconds = 0").is_err());
        assert!(parse("[log]\nformat = \"xml\"").is_err());
        assert!(parse("[log]\nformat = \"json\"").is_ok());
        let d = Config::default();
        assert_eq!(d.metrics.listen, "127.0.0.1:9464");
        assert_eq!(d.log.format, "text");
    }

    #[test]
    fn metrics_keys_can_come_from_the_environment() {
        let mut doc = toml::Table::new();
        let vars = [(
            "STEPSTREAM_METRICS_LISTEN".to_string(),
            "0.0.0.0:9464".to_string(),
        )];
        apply_env(&mut doc, vars.into_iter()).unwrap();
        let cfg: Config = toml::Value::Table(doc).try_into().unwrap();
        assert_eq!(cfg.metrics.listen, "0.0.0.0:9464");
    }
}
