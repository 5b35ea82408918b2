//! What every real call (Lambda, HTTP, AWS services) shares: the `[tasks]` config, the destination
//! allow-list, one HTTP client per shard thread, per-resource concurrency limits, a time
//! limit and a size cap on every response.
//!
//! Shards are OS threads, each with its own current-thread tokio runtime. A connection
//! pool is bound to the runtime whose I/O driver opened its sockets, so a client must
//! never be shared between runtimes: [`client`] keeps one per thread and builds a new one
//! when the thread's runtime changes (`stepstream exec` builds a runtime per execution).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{names, WorkflowError};

/// The largest response body a task reads (AWS's payload limit); more is `States.DataLimitExceeded`.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Distinct resources that get their own concurrency limit; past this they share one, so
/// names taken from execution data cannot grow the table without bound.
const MAX_LIMITED_RESOURCES: usize = 4096;

/// `[tasks]`: how Task states reach real services.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksConfig {
    /// Hosts calls may reach besides loopback: `api.example.com`, `api.example.com:8443`,
    /// or `*.example.com`. Nothing else is called (Lambda endpoints named in
    /// `[tasks.lambda]` are allowed by being named there).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Whether 127.0.0.0/8, ::1 and `localhost` may be called without being listed.
    #[serde(default = "default_true")]
    pub allow_loopback: bool,
    /// Most calls in flight at once per resource (function, or HTTP resource) in one process.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Time limit of one call when the Task state sets no TimeoutSeconds (then `States.Timeout`).
    #[serde(default = "default_call_timeout")]
    pub call_timeout_seconds: f64,
    /// An AWS Step Functions Local MockConfigFile whose test case [`Self::test_case`]
    /// answers the Task states it names, per state machine (for `stepstream run`).
    #[serde(default)]
    pub mock_config: Option<PathBuf>,
    /// The test case of `mock_config` to use.
    #[serde(default)]
    pub test_case: Option<String>,
    /// Lambda endpoints.
    #[serde(default)]
    pub lambda: LambdaConfig,
    /// HTTP Task connections (auth).
    #[serde(default)]
    pub http: HttpConfig,
    /// Where `arn:stepstream:::kafka:produce` writes.
    #[serde(default)]
    pub kafka: super::kafka::KafkaTaskConfig,
    /// AWS service integrations: region and endpoints.
    #[serde(default)]
    pub aws: super::aws::AwsConfig,
}

impl Default for TasksConfig {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            allow_loopback: true,
            max_concurrency: default_max_concurrency(),
            call_timeout_seconds: default_call_timeout(),
            mock_config: None,
            test_case: None,
            lambda: LambdaConfig::default(),
            http: HttpConfig::default(),
            kafka: super::kafka::KafkaTaskConfig::default(),
            aws: super::aws::AwsConfig::default(),
        }
    }
}

// Hand-written so that connection secrets never reach a log line through `{:?}`.
impl fmt::Debug for TasksConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TasksConfig")
            .field("allow_hosts", &self.allow_hosts)
            .field("allow_loopback", &self.allow_loopback)
            .field("max_concurrency", &self.max_concurrency)
            .field("call_timeout_seconds", &self.call_timeout_seconds)
            .field("mock_config", &self.mock_config)
            .field("test_case", &self.test_case)
            .field("lambda", &self.lambda)
            .field("http_connections", &self.http.connections.len())
            .field("kafka_brokers", &self.kafka.brokers)
            .field("kafka_topics", &self.kafka.topics)
            .field("aws", &self.aws)
            .finish()
    }
}

/// `[tasks.lambda]`: where each function is invoked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaConfig {
    /// Endpoint per function: the key is a function name, a full function ARN, or an ARN
    /// prefix ending in `*`; the value a base URL (`http://127.0.0.1:9001`), or a whole
    /// invocation URL ending in `/invocations` (the Runtime Interface Emulator serves only
    /// `.../2015-03-31/functions/function/invocations`). Calls to a listed endpoint are
    /// not signed.
    #[serde(default)]
    pub functions: BTreeMap<String, String>,
    /// Endpoint for every function not listed (e.g. one local emulator); unset means AWS's
    /// regional endpoint `https://lambda.REGION.amazonaws.com`, SigV4-signed with
    /// credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`,
    /// the shared files (`AWS_PROFILE`) or a web identity token; its host must then be in
    /// `allow_hosts`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region when a function is named without an ARN (else `AWS_REGION`, else us-east-1).
    #[serde(default)]
    pub region: Option<String>,
    /// Sign calls to the endpoints configured above too (SigV4, for a Lambda-compatible
    /// service that checks signatures); AWS's own endpoint is always signed.
    #[serde(default)]
    pub sign: bool,
}

/// `[tasks.http]`: what HTTP Task calls carry, by destination.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Connections, the longest matching `prefix` applies (in place of an EventBridge
    /// connection ARN).
    #[serde(default)]
    pub connections: Vec<HttpConnection>,
}

/// Auth for calls whose URL starts with `prefix`. Its values are secrets: they are sent,
/// never logged, returned or written to a dead letter.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConnection {
    /// URL prefix (`https://api.example.com/v1/`).
    pub prefix: String,
    /// Headers added to the request (an API key: `{"x-api-key" = "..."}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters added to the request.
    #[serde(default)]
    pub query_parameters: BTreeMap<String, String>,
    /// HTTP basic auth.
    #[serde(default)]
    pub basic: Option<BasicAuth>,
}

/// A user name and password for HTTP basic auth.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

fn default_true() -> bool {
    true
}
fn default_max_concurrency() -> usize {
    256
}
fn default_call_timeout() -> f64 {
    60.0
}

impl TasksConfig {
    /// Checks values a call would otherwise trip over.
    pub fn check(&self) -> Result<(), String> {
        if self.max_concurrency == 0 {
            return Err("tasks.max_concurrency must be at least 1".into());
        }
        if self.mock_config.is_some() != self.test_case.is_some() {
            return Err("tasks.mock_config and tasks.test_case go together".into());
        }
        if !(self.call_timeout_seconds.is_finite() && self.call_timeout_seconds > 0.0) {
            return Err("tasks.call_timeout_seconds must be a positive number".into());
        }
        let urls = self
            .lambda
            .functions
            .iter()
            .map(|(k, v)| (format!("tasks.lambda.functions.{k:?}"), v))
            .chain(
                self.lambda
                    .endpoint
                    .iter()
                    .map(|v| ("tasks.lambda.endpoint".into(), v)),
            );
        for (key, url) in urls {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => return Err(format!("{key}: {url:?} is not an http(s) URL")),
            }
        }
        self.aws.check()?;
        for c in &self.http.connections {
            if reqwest::Url::parse(&c.prefix).is_err() {
                return Err(format!(
                    "tasks.http.connections: prefix {:?} is not a URL",
                    c.prefix
                ));
            }
        }
        Ok(())
    }

    /// Whether a URL's host may be called (allow-list or loopback).
    pub fn allows(&self, url: &reqwest::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if self.allow_loopback && is_loopback(host) {
            return true;
        }
        let port = url.port_or_known_default();
        self.allow_hosts.iter().any(|pattern| {
            let (name, want_port) = match pattern.rsplit_once(':') {
                Some((n, p)) if !n.contains(':') || n.ends_with(']') => (n, p.parse().ok()),
                _ => (pattern.as_str(), None),
            };
            let name = name.trim_start_matches('[').trim_end_matches(']');
            let name_ok = match name.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|h| h.ends_with('.') && h.len() > 1),
                None => host.eq_ignore_ascii_case(name),
            };
            name_ok && want_port.is_none_or(|p: u16| Some(p) == port)
        })
    }

    /// The refusal a call to a host outside the allow-list gets.
    pub fn refusal(&self, url: &reqwest::Url) -> WorkflowError {
        let host = url.host_str().unwrap_or("");
        let hint = if self.allow_loopback {
            "only loopback is allowed unless listed"
        } else {
            "tasks.allow_loopback is false"
        };
        WorkflowError::new(
            names::TASK_FAILED,
            format!(
                "destination {host:?} is not allowed: add it to [tasks] allow_hosts in the config ({hint})"
            ),
        )
    }

    /// How long one call may wait: the state's TimeoutSeconds when it sets one (so a long
    /// one is not cut short by the default), else [`Self::call_timeout`].
    pub fn call_limit(&self, state_timeout: Option<Duration>) -> Duration {
        state_timeout.unwrap_or_else(|| self.call_timeout())
    }

    /// The time limit of one call when the state sets none.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.call_timeout_seconds.clamp(0.001, 1e9))
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

thread_local! {
    // One client (and so one connection pool per endpoint) per thread, tagged with the
    // runtime whose sockets it holds.
    static CLIENT: RefCell<Option<(tokio::runtime::Id, reqwest::Client)>> = const { RefCell::new(None) };
}

/// The HTTP client of the current thread's runtime (cheap: a reference-counted handle).
/// Must be called inside a tokio runtime.
pub fn client() -> Result<reqwest::Client, WorkflowError> {
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|_| WorkflowError::new(names::TASK_FAILED, "a real task call needs a runtime"))?
        .id();
    CLIENT.with(|c| {
        let mut c = c.borrow_mut();
        if let Some((id, client)) = c.as_ref() {
            if *id == rt {
                return Ok(client.clone());
            }
        }
        let client = reqwest::Client::builder()
            // A redirect could lead past the allow-list; proxies from the environment
            // could see secrets meant for one destination.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| {
                WorkflowError::new(
                    names::TASK_FAILED,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        *c = Some((rt, client.clone()));
        Ok(client)
    })
}

/// A response read whole, within [`MAX_RESPONSE_BYTES`].
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: reqwest::StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// No connection, reset, bad TLS, ...: the cause text (no URL: it may hold secrets).
    Unreachable(String),
    /// The call took longer than the call time limit.
    TimedOut,
    /// The body was larger than [`MAX_RESPONSE_BYTES`].
    TooLarge,
}

/// Sends a request and reads its response body with a cap, within `limit`.
pub async fn send(req: reqwest::RequestBuilder, limit: Duration) -> Result<Response, SendError> {
    let work = async {
        let mut resp = req
            .send()
            .await
            .map_err(|e| SendError::Unreachable(describe(&e)))?;
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(SendError::TooLarge);
        }
        let (status, headers) = (resp.status(), resp.headers().clone());
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| SendError::Unreachable(describe(&e)))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(SendError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    };
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or(Err(SendError::TimedOut))
}

// reqwest's messages name the URL, which may carry secret query parameters; the chain of
// sources without it still says what went wrong.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts = vec![if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "the response body could not be read".to_string()
    } else {
        "the request failed".to_string()
    }];
    let mut src = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    parts.join(": ")
}

impl SendError {
    /// The workflow error for this failure, with `unreachable` as the error name of a call
    /// that got no answer.
    pub fn into_workflow(self, unreachable: &str, what: &str, limit: Duration) -> WorkflowError {
        match self {
            SendError::Unreachable(why) => {
                WorkflowError::new(unreachable, format!("{what}: {why}"))
            }
            SendError::TimedOut => WorkflowError::new(
                names::TIMEOUT,
                format!(
                    "{what}: no answer within {} seconds (tasks.call_timeout_seconds)",
                    limit.as_secs_f64()
                ),
            ),
            SendError::TooLarge => WorkflowError::new(
                names::DATA_LIMIT_EXCEEDED,
                format!("{what}: the response is larger than {MAX_RESPONSE_BYTES} bytes"),
            ),
        }
    }
}

/// Per-resource concurrency limits, shared by every shard of a process.
pub struct Limits {
    per_resource: usize,
    by_key: Mutex<HashMap<String, Arc<Semaphore>>>,
    overflow: Arc<Semaphore>,
}

impl Limits {
    /// At most `per_resource` calls in flight for each resource key.
    pub fn new(per_resource: usize) -> Self {
        let per_resource = per_resource.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            per_resource,
            by_key: Mutex::new(HashMap::new()),
            overflow: Arc::new(Semaphore::new(per_resource)),
        }
    }

    /// Waits for a slot for one call to `key`; the slot is freed when the permit drops.
    pub async fn acquire(&self, key: &str) -> OwnedSemaphorePermit {
        let sem = {
            // A poisoned lock only means another thread panicked mid-insert; the map is fine.
            let mut map = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(key) {
                Some(s) => Arc::clone(s),
                None if map.len() < MAX_LIMITED_RESOURCES => {
                    let s = Arc::new(Semaphore::new(self.per_resource));
                    map.insert(key.to_string(), Arc::clone(&s));
                    s
                }
                None => Arc::clone(&self.overflow),
            }
        };
        sem.acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn allow_list_admits_loopback_and_listed_hosts_only() {
        let mut cfg = TasksConfig::default();
        assert!(cfg.allows(&url("http://127.0.0.1:8080/x")));
        assert!(cfg.allows(&url("http://localhost/x")));
        assert!(cfg.allows(&url("http://[::1]:9/x")));
        assert!(!cfg.allows(&url("https://api.example.com/x")));
        cfg.allow_hosts = vec!["*.example.com".into(), "other.org:8443".into()];
        assert!(cfg.allows(&url("https://api.example.com/x")));
        assert!(!cfg.allows(&url("https://example.com/x")));
        assert!(!cfg.allows(&url("https://evilexample.com/x")));
        assert!(cfg.allows(&url("https://other.org:8443/")));
        assert!(!cfg.allows(&url("https://other.org/")));
        cfg.allow_loopback = false;
        assert!(!cfg.allows(&url("http://127.0.0.1:8080/x")));
        let e = cfg.refusal(&url("http://127.0.0.1:8080/x"));
        assert!(e.cause.unwrap().contains("allow_hosts"));
    }

    #[test]
    fn config_check_names_the_bad_key() {
        let mut cfg = TasksConfig::default();
        cfg.lambda.functions.insert("f".into(), "ftp://x".into());
        assert!(cfg.check().unwrap_err().contains("tasks.lambda.functions"));
    }

    #[test]
    fn debug_output_holds_no_connection_secret() {
        let mut cfg = TasksConfig::default();
        cfg.http.connections.push(HttpConnection {
            prefix: "http://127.0.0.1/".into(),
            headers: [("x-api-key".to_string(), "s3cret".to_string())].into(),
            query_parameters: BTreeMap::new(),
            basic: None,
        });
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn the_documented_config_files_load() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let cfg = crate::config::Config::load(Some(&root.join("config/stepstream.toml"))).unwrap();
        assert!(cfg.tasks.allow_loopback && cfg.tasks.allow_hosts.is_empty());
        let example = root.join("examples/order-lambda/stepstream.toml");
        let cfg = crate::config::Config::load(Some(&example)).unwrap();
        assert_eq!(cfg.tasks.lambda.functions.len(), 4);
    }

    #[tokio::test]
    async fn a_dropped_call_closes_its_connection() {
        use tokio::io::AsyncReadExt;
        // A server that reads the request and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let call = tokio::spawn(async move {
            let req = client().unwrap().get(url);
            send(req, Duration::from_secs(600)).await
        });
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let n = sock.read(&mut buf).await.unwrap();
        assert!(n > 0, "the request arrives");
        // What the exec layer's TimeoutSeconds race does: drop the call's future.
        call.abort();
        let eof = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf))
            .await
            .expect("the connection is closed, not left open");
        assert_eq!(eof.unwrap_or(0), 0);
    }

    #[tokio::test]
    async fn limits_hold_callers_past_the_per_resource_count() {
        let limits = Limits::new(1);
        let first = limits.acquire("f").await;
        let blocked = tokio::time::timeout(Duration::from_millis(10), limits.acquire("f")).await;
        assert!(blocked.is_err(), "a second call must wait for the first");
        let _other = limits.acquire("g").await;
        drop(first);
        let _again = limits.acquire("f").await;
    }
}
