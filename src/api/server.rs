//! The HTTP/1.1 server under the API: keep-alive connections on one thread, every request
//! bounded in header size, body size and time, and a cap on open connections.
//!
//! The server knows nothing of Step Functions: it reads a whole request and hands it to a
//! [`Handler`], so a benchmark can measure the same server answering a fixed body.

use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};

/// One whole request.
#[derive(Debug)]
pub struct Call {
    /// The method.
    pub method: Method,
    /// Path and query as sent.
    pub uri: hyper::Uri,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// One whole answer.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Bytes,
}

/// What answers requests.
pub trait Handler: 'static {
    /// Answers one request.
    fn call(self: Rc<Self>, call: Call) -> LocalBoxFuture<'static, Answer>;
    /// The answer to a body over [`Limits::max_body_bytes`].
    fn too_large(&self, limit: usize) -> Answer;
    /// The answer to a body not read in time or broken off.
    fn bad_body(&self, why: String) -> Answer;
}

/// What one connection and one request may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body read.
    pub max_body_bytes: usize,
    /// Longest time to read a request's headers (also how long an idle keep-alive
    /// connection stays open).
    pub header_timeout: Duration,
    /// Longest time to read a body.
    pub body_timeout: Duration,
    /// Largest header section, in bytes.
    pub max_header_bytes: usize,
    /// Most connections open at once.
    pub max_connections: usize,
    /// How long requests being answered may take to finish once the server stops.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 << 20,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_header_bytes: 64 << 10,
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `listener` until `stop` resolves, then lets answers in progress finish within the
/// grace period. Runs on a `LocalSet` (the handler is `Rc`, one thread).
pub async fn serve<H: Handler>(
    listener: tokio::net::TcpListener,
    handler: Rc<H>,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) {
    let open = Rc::new(Cell::new(0usize));
    let busy = Rc::new(Cell::new(0usize));
    let room = Rc::new(tokio::sync::Notify::new());
    tokio::pin!(stop);
    loop {
        while open.get() >= limits.max_connections {
            tokio::select! {
                _ = room.notified() => {}
                _ = &mut stop => return drain(&busy, limits.shutdown_grace).await,
            }
        }
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("stepstream: api: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => return drain(&busy, limits.shutdown_grace).await,
        };
        let _ = stream.set_nodelay(true);
        open.set(open.get() + 1);
        let (handler, open, busy, room) = (
            Rc::clone(&handler),
            Rc::clone(&open),
            Rc::clone(&busy),
            Rc::clone(&room),
        );
        tokio::task::spawn_local(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (handler, busy) = (Rc::clone(&handler), Rc::clone(&busy));
                async move {
                    busy.set(busy.get() + 1);
                    let answer = answer(handler, req, limits).await;
                    busy.set(busy.get() - 1);
                    Ok::<_, Infallible>(answer)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_header_bytes.max(8192))
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            open.set(open.get() - 1);
            room.notify_one();
        });
    }
}

async fn drain(busy: &Cell<usize>, grace: Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    while busy.get() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn answer<H: Handler>(
    handler: Rc<H>,
    req: Request<hyper::body::Incoming>,
    limits: Limits,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    // A declared length over the limit is refused before a byte of the body is read.
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let answer = if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        handler.too_large(limits.max_body_bytes)
    } else {
        let read = tokio::time::timeout(
            limits.body_timeout,
            Limited::new(body, limits.max_body_bytes).collect(),
        )
        .await;
        match read {
            Err(_) => handler.bad_body(format!(
                "the body was not received within {} s",
                limits.body_timeout.as_secs()
            )),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                handler.too_large(limits.max_body_bytes)
            }
            Ok(Err(e)) => handler.bad_body(format!("the body could not be read: {e}")),
            Ok(Ok(collected)) => {
                let call = Call {
                    method: parts.method,
                    uri: parts.uri,
                    headers: parts.headers,
                    body: collected.to_bytes(),
                };
                handler.call(call).await
            }
        }
    };
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() =
        hyper::StatusCode::from_u16(answer.status).unwrap_or(hyper::StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    let id = crate::pipeline::result::new_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    if let Ok(v) = hyper::header::HeaderValue::from_str(id.hyphenated().encode_lower(&mut text)) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}
