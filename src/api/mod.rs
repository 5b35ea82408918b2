//! The AWS Step Functions API over HTTP (AWS JSON 1.0: `POST /` with
//! `X-Amz-Target: AWSStepFunctions.<Operation>`), so that the AWS CLI and the SDKs drive
//! stepstream with `--endpoint-url`.
//!
//! `stepstream run` starts it on `[api] listen`: its own thread accepts connections and
//! hands each to a shard, which serves it ([`ShardConnection`]), so StartSyncExecution
//! reads, runs and answers on one thread. [`server`] reads bounded requests, [`auth`] checks SigV4 signatures when keys
//! are configured, [`Api`] dispatches to the operations in [`machines`] (state machine
//! CRUD and validation, through the definitions topic of [`crate::pipeline::definitions`]),
//! [`executions`]
//! (StartSyncExecution on a shard, StartExecution onto the requests topic) and
//! [`test_state`]. Every failure is AWS's error shape ([`errors`]).

pub mod auth;
pub mod errors;
pub mod executions;
pub mod fields;
pub mod machines;
pub mod server;
pub mod test_state;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use futures::future::LocalBoxFuture;
use hyper::body::Bytes;
use rdkafka::producer::FutureProducer;

use crate::config::Config;
use crate::pipeline::definitions::{self as registry, Registry};
use crate::shard::{ShardView, Submitter, Work};
use errors::ApiError;
use fields::Fields;
use server::{Answer, Call, Handler};

/// The `X-Amz-Target` prefix of Step Functions operations.
const TARGET_PREFIX: &str = "AWSStepFunctions.";

/// The API's state, shared by the shards that serve its connections.
pub struct Api {
    registry: Arc<Registry>,
    max_in_flight: usize,
    max_input_depth: usize,
    producer: FutureProducer,
    requests_topic: Option<String>,
    access_keys: BTreeMap<String, String>,
    /// Whether TestState's `revealSecrets` may show what HTTP connections add.
    reveal_secrets: bool,
}

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ApiStartError {
    /// The address is taken or invalid.
    #[error("the API cannot listen on {addr}: {reason} (set [api] listen to another address, or \"off\")")]
    Listen {
        /// The configured address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The producer cannot be made.
    #[error("the API's producer: {0}")]
    Kafka(String),
    /// The thread cannot be started.
    #[error("cannot start the API thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The running API; stops (after in-progress answers, within a grace period) when dropped.
pub struct ApiServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the API on `cfg.api.listen`; `None` when it is `"off"`. `stepstream run` passes
/// this to [`crate::pipeline::run_with`], which calls it once the shards run.
pub fn start(
    cfg: &Config,
    brokers: &str,
    registry: Arc<Registry>,
    shards: Vec<Submitter>,
) -> Result<Option<ApiServer>, ApiStartError> {
    let listen = cfg.api.listen.trim();
    if listen.is_empty() || listen.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let listen_err = |reason: String| ApiStartError::Listen {
        addr: listen.to_string(),
        reason,
    };
    let std_listener =
        std::net::TcpListener::bind(listen).map_err(|e| listen_err(e.to_string()))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| listen_err(e.to_string()))?;
    let addr = std_listener
        .local_addr()
        .map_err(|e| listen_err(e.to_string()))?;
    let mut p = crate::pipeline::sink::base_config(cfg, brokers);
    p.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1");
    let producer: FutureProducer = p
        .create()
        .map_err(|e| ApiStartError::Kafka(e.to_string()))?;
    let api = Arc::new(Api {
        registry,
        max_in_flight: cfg.engine.max_in_flight_per_shard,
        max_input_depth: cfg.engine.max_request_depth,
        producer,
        requests_topic: cfg
            .inputs
            .iter()
            .find(|i| i.state_machine.is_none())
            .map(|i| i.topic.clone()),
        access_keys: cfg.api.access_keys.clone(),
        reveal_secrets: cfg.api.reveal_secrets,
    });
    let limits = server::Limits {
        max_connections: cfg.api.max_connections.max(1),
        ..server::Limits::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("api".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime can always be built");
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("stepstream: api: cannot listen: {e}");
                        return;
                    }
                };
                let next = Cell::new(0usize);
                let place = |accepted| place(&shards, &next, &api, limits, accepted);
                server::serve(listener, place, limits, async {
                    let _ = stop_rx.await;
                })
                .await;
            });
        })?;
    tracing::info!(
        "stepstream: serving the AWS Step Functions API on http://{addr} \
         (aws stepfunctions --endpoint-url http://{addr} ...)"
    );
    Ok(Some(ApiServer {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    }))
}

/// The API as a service of [`crate::pipeline::run_with_service`].
pub fn service() -> crate::pipeline::Service {
    Box::new(|cfg, brokers, registry, shards| {
        start(cfg, brokers, registry, shards)
            .map(|s| s.map(|s| Box::new(s) as crate::pipeline::Running))
            .map_err(|e| e.to_string())
    })
}

/// Hands a connection to the least busy shard, starting from a rotating one.
fn place(
    shards: &[Submitter],
    next: &Cell<usize>,
    api: &Arc<Api>,
    limits: server::Limits,
    accepted: server::Accepted,
) -> Result<(), server::Accepted> {
    let n = shards.len();
    if n == 0 {
        return Err(accepted);
    }
    let first = next.get() % n;
    next.set(first + 1);
    let mut order: Vec<usize> = (0..n).map(|i| (first + i) % n).collect();
    order.sort_by_key(|&i| shards[i].in_flight());
    let mut job: crate::shard::Job = Box::new(ShardConnection {
        api: Arc::clone(api),
        accepted,
        limits,
    });
    for i in order {
        // A connection is not an execution: only a full queue refuses it.
        match shards[i].try_submit(job, usize::MAX) {
            Ok(()) => return Ok(()),
            Err(back) => job = back,
        }
    }
    tracing::warn!("stepstream: api: every shard's queue is full; a connection is closed");
    Ok(())
}

/// One API connection, served on the shard it was handed to.
pub struct ShardConnection {
    api: Arc<Api>,
    accepted: server::Accepted,
    limits: server::Limits,
}

impl Work for ShardConnection {
    fn run(self: Box<Self>, shard: ShardView) -> Pin<Box<dyn Future<Output = ()>>> {
        // The slot `try_submit` took counts executions; the connection holds none. Its
        // StartSyncExecution calls take their own.
        shard.in_flight.fetch_sub(1, Ordering::Relaxed);
        let ShardConnection {
            api,
            accepted,
            limits,
        } = *self;
        Box::pin(server::connection(
            accepted,
            Rc::new(OnShard { api, shard }),
            limits,
        ))
    }
}

/// The API as one shard serves it.
struct OnShard {
    api: Arc<Api>,
    shard: ShardView,
}

impl Api {
    async fn dispatch(&self, call: Call, shard: &ShardView) -> Result<Bytes, ApiError> {
        if call.method != hyper::Method::POST {
            return Err(ApiError::unknown_operation(format!(
                "{} is not an operation: the API takes POST requests with X-Amz-Target",
                call.method
            )));
        }
        let target = call
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(op) = target.strip_prefix(TARGET_PREFIX) else {
            return Err(ApiError::unknown_operation(if target.is_empty() {
                "the request has no X-Amz-Target header (AWSStepFunctions.<Operation>)".to_string()
            } else {
                format!("{target} is not an operation of AWSStepFunctions")
            }));
        };
        auth::check(
            &self.access_keys,
            call.method.as_str(),
            &call.uri,
            &call.headers,
            &call.body,
        )?;
        let f = Fields::parse(&call.body)?;
        if op == "StartSyncExecution" {
            // Its answer comes written from the shard.
            return executions::start_sync(self, f, shard).await;
        }
        let answer = match op {
            "CreateStateMachine" => machines::create(self, f).await,
            "DescribeStateMachine" => machines::describe(self, f),
            "ListStateMachines" => machines::list(self, f),
            "UpdateStateMachine" => machines::update(self, f).await,
            "DeleteStateMachine" => machines::delete(self, f).await,
            "ValidateStateMachineDefinition" => machines::validate(f),
            "StartExecution" => executions::start(self, f).await,
            "TestState" => test_state::test_state(self, f).await,
            other => Err(ApiError::unknown_operation(format!(
                "{other} is not an operation stepstream serves (it serves CreateStateMachine, \
                 DescribeStateMachine, ListStateMachines, UpdateStateMachine, \
                 DeleteStateMachine, ValidateStateMachineDefinition, StartSyncExecution, \
                 StartExecution and TestState)"
            ))),
        };
        answer.map(|v| Bytes::from(v.to_string()))
    }
}

fn error_answer(e: &ApiError) -> Answer {
    Answer {
        status: e.status,
        body: Bytes::from(e.body()),
    }
}

impl Handler for OnShard {
    fn call(self: Rc<Self>, call: Call) -> LocalBoxFuture<'static, Answer> {
        Box::pin(async move {
            match self.api.dispatch(call, &self.shard).await {
                Ok(body) => Answer { status: 200, body },
                Err(e) => error_answer(&e),
            }
        })
    }

    fn too_large(&self, limit: usize) -> Answer {
        error_answer(&ApiError::too_large(format!(
            "the request body is over {limit} bytes (definitions take at most {} characters, \
             execution inputs {} bytes)",
            registry::MAX_DEFINITION_CHARS,
            executions::MAX_INPUT_BYTES
        )))
    }

    fn bad_body(&self, why: String) -> Answer {
        error_answer(&ApiError::serialization(why))
    }
}
