//! The HTTP/1.1 server under the API: one thread accepts, the shards serve the connections
//! (keep-alive), every request bounded in header size, body size and time, and a cap on
//! open connections.
//!
//! The server knows nothing of Step Functions: it reads a whole request and hands it to a
//! [`Handler`], so a benchmark can measure the same server answering a fixed body.

use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 << 20,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_header_bytes: 64 << 10,
            max_connections: 1024,
        }
    }
}

/// Accepts connections on `listener` until `stop` resolves and hands each to `place`, with
/// a permit that caps open connections at [`Limits::max_connections`] (held until the
/// connection closes). `place` serves the connection somewhere (a shard, see
/// [`connection`]) or gives it back, and then it is closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    place: impl Fn(Accepted) -> Result<(), Accepted>,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) {
    let room = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&room).acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut stop => return,
        };
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
            _ = &mut stop => return,
        };
        let _ = stream.set_nodelay(true);
        // Leaves this thread's reactor; the thread that serves it registers it with its own.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("stepstream: api: cannot hand a connection over: {e}");
                continue;
            }
        };
        if place(Accepted { stream, permit }).is_err() {
            tracing::warn!("stepstream: api: no thread takes a connection now; closed it");
        }
    }
}

/// An accepted connection and its place under the connection cap.
pub struct Accepted {
    /// The socket, non-blocking.
    pub stream: std::net::TcpStream,
    /// Released when the connection is dropped.
    pub permit: tokio::sync::OwnedSemaphorePermit,
}

/// Serves one accepted connection on the current thread's runtime (keep-alive, every
/// request bounded by `limits`) until the client closes it or it idles out.
pub async fn connection<H: Handler>(accepted: Accepted, handler: Rc<H>, limits: Limits) {
    let Accepted { stream, permit } = accepted;
    let stream = match tokio::net::TcpStream::from_std(stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("stepstream: api: cannot serve a connection: {e}");
            return;
        }
    };
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let handler = Rc::clone(&handler);
        async move { Ok::<_, Infallible>(answer(handler, req, limits).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    drop(permit);
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
