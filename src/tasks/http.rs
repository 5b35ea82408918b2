//! The HTTP Task, `arn:aws:states:::http:invoke`, with AWS's arguments and result shape.
//!
//! Arguments: `ApiEndpoint`, `Method`, `Headers`, `QueryParameters`, `RequestBody`, and
//! `Transform` (`RequestBodyEncoding: URL_ENCODED` with `RequestEncodingOptions.ArrayFormat`
//! INDICES, BRACKETS, REPEAT or COMMAS). AWS's `Authentication.ConnectionArn` names an
//! EventBridge connection; here the connection's headers, query parameters or basic auth
//! come from `[[tasks.http.connections]]` in the config, chosen by URL prefix (OAuth client
//! credentials are not supported).
//!
//! Result: `{Headers, ResponseBody, StatusCode, StatusText}`, the body parsed when the
//! content type is JSON. A non-2xx answer fails the task with `States.Http.StatusCode.NNN`
//! and the result object as the cause.

use std::sync::Arc;

use crate::json;

use crate::value::{Map, Value};

use super::net::{self, HttpConnection, Limits, TasksConfig};
use super::{TaskCall, TaskFuture, TaskHandler};
use crate::error::{names, WorkflowError};

/// The resource.
pub const INVOKE: &str = "arn:aws:states:::http:invoke";

/// Deepest nesting the URL encoder follows (deeper values are refused).
const MAX_ENCODE_DEPTH: usize = 32;

/// Calls HTTP endpoints for `http:invoke`.
pub struct Http {
    cfg: Arc<TasksConfig>,
    limits: Arc<Limits>,
    trace: Option<Trace>,
}

impl Http {
    /// A caller using this config and these limits.
    pub fn new(cfg: Arc<TasksConfig>, limits: Arc<Limits>) -> Self {
        Self {
            cfg,
            limits,
            trace: None,
        }
    }

    /// The same caller, recording what each call sends and gets back into `trace`.
    pub fn traced(&self, trace: Trace) -> Self {
        Self {
            cfg: Arc::clone(&self.cfg),
            limits: Arc::clone(&self.limits),
            trace: Some(trace),
        }
    }
}

/// Where a traced caller keeps its last exchange (TestState's TRACE level).
pub type Trace = Arc<std::sync::Mutex<Option<Exchange>>>;

/// One HTTP exchange as it went over the wire: the request as built for sending and the
/// response as read (both within the task's size limits).
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// The method sent.
    pub method: String,
    /// The URL sent, a connection's query parameters included.
    pub url: String,
    /// The URL without what a connection added.
    pub url_without_secrets: String,
    /// Headers sent, in order; `true` marks those a connection added (its secrets).
    pub headers: Vec<(String, String, bool)>,
    /// The body sent (lossy UTF-8).
    pub body: String,
    /// The answer, if one came.
    pub response: Option<ExchangeResponse>,
}

/// The response half of an [`Exchange`].
#[derive(Debug, Clone, Default)]
pub struct ExchangeResponse {
    /// Status code.
    pub status_code: u16,
    /// The status code's reason phrase.
    pub status_message: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body as read (lossy UTF-8).
    pub body: String,
}

/// The request about to be sent, as an [`Exchange`] without its response; `written` are
/// the header names as the state's Headers spelled them.
fn exchange_of(
    req: &reqwest::Request,
    url_without_secrets: &reqwest::Url,
    conn: Option<&HttpConnection>,
    written: &[(String, String)],
) -> Exchange {
    let secret = |name: &str| {
        conn.is_some_and(|c| {
            c.headers.keys().any(|k| k.eq_ignore_ascii_case(name))
                || (c.basic.is_some() && name.eq_ignore_ascii_case("authorization"))
        })
    };
    // The HTTP client keeps header names lower-case; AWS reports a header the way the
    // definition (or the connection) wrote it, so that spelling is looked up again.
    let spelled = |name: &str| {
        written
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(
                conn.into_iter()
                    .flat_map(|c| c.headers.keys().map(String::as_str)),
            )
            .find(|k| k.eq_ignore_ascii_case(name))
            .unwrap_or(name)
            .to_string()
    };
    Exchange {
        method: req.method().to_string(),
        url: req.url().to_string(),
        url_without_secrets: url_without_secrets.to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (spelled(k.as_str()), value, secret(k.as_str()))
            })
            .collect(),
        body: req
            .body()
            .and_then(reqwest::Body::as_bytes)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default(),
        response: None,
    }
}

fn bad(why: impl Into<String>) -> WorkflowError {
    WorkflowError::new(names::TASK_FAILED, why)
}

/// A scalar argument as the text sent.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Array encodings of `RequestEncodingOptions.ArrayFormat`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ArrayFormat {
    Indices,
    Brackets,
    Repeat,
    Commas,
}

/// Flattens a JSON value into `key=value` pairs the way AWS's URL_ENCODED transform does.
fn flatten(
    key: &str,
    v: &Value,
    fmt: ArrayFormat,
    depth: usize,
    out: &mut Vec<(String, String)>,
) -> Result<(), WorkflowError> {
    if depth > MAX_ENCODE_DEPTH {
        return Err(bad("RequestBody is nested too deeply to URL-encode"));
    }
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let k = if key.is_empty() {
                    k.to_string()
                } else {
                    format!("{key}[{k}]")
                };
                flatten(&k, v, fmt, depth + 1, out)?;
            }
        }
        Value::Array(items) => {
            if fmt == ArrayFormat::Commas && items.iter().all(|i| text_of(i).is_some()) {
                let joined: Vec<String> = items.iter().filter_map(text_of).collect();
                out.push((key.to_string(), joined.join(",")));
                return Ok(());
            }
            for (i, item) in items.iter().enumerate() {
                let k = match fmt {
                    ArrayFormat::Indices | ArrayFormat::Commas => format!("{key}[{i}]"),
                    ArrayFormat::Brackets => format!("{key}[]"),
                    ArrayFormat::Repeat => key.to_string(),
                };
                flatten(&k, item, fmt, depth + 1, out)?;
            }
        }
        Value::Null => out.push((key.to_string(), String::new())),
        scalar => out.push((key.to_string(), text_of(scalar).unwrap_or_default())),
    }
    Ok(())
}

/// The request a call sends, built from the task's arguments (before auth is added).
#[derive(Debug)]
struct Request {
    url: reqwest::Url,
    method: reqwest::Method,
    headers: Vec<(String, String)>,
    body: Option<(Vec<u8>, &'static str)>,
}

fn build(input: &Value) -> Result<Request, WorkflowError> {
    let endpoint = input
        .get("ApiEndpoint")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("http:invoke needs an ApiEndpoint string in its Parameters"))?;
    let mut url = reqwest::Url::parse(endpoint)
        .map_err(|e| bad(format!("ApiEndpoint {endpoint:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "ApiEndpoint {endpoint:?} is not an http(s) URL"
        )));
    }
    let method = input.get("Method").and_then(Value::as_str).ok_or_else(|| {
        bad("http:invoke needs a Method (GET, POST, PUT, DELETE, PATCH, HEAD or OPTIONS)")
    })?;
    let method = match method.to_ascii_uppercase().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS") => {
            reqwest::Method::from_bytes(m.as_bytes()).map_err(|e| bad(e.to_string()))?
        }
        other => return Err(bad(format!("Method {other:?} is not supported"))),
    };
    if let Some(q) = input.get("QueryParameters") {
        let q = q
            .as_object()
            .ok_or_else(|| bad("QueryParameters must be an object"))?;
        let mut pairs = Vec::new();
        for (k, v) in q {
            flatten(k, v, ArrayFormat::Repeat, 0, &mut pairs)?;
        }
        url.query_pairs_mut().extend_pairs(pairs);
    }
    let mut headers = Vec::new();
    if let Some(h) = input.get("Headers") {
        let h = h
            .as_object()
            .ok_or_else(|| bad("Headers must be an object"))?;
        for (k, v) in h {
            if k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("content-length") {
                return Err(bad(format!("the header {k:?} cannot be set")));
            }
            let v = text_of(v).ok_or_else(|| bad(format!("the header {k:?} must be a string")))?;
            headers.push((k.to_string(), v));
        }
    }
    let transform = input.get("Transform");
    let encoding = transform
        .and_then(|t| t.get("RequestBodyEncoding"))
        .and_then(Value::as_str)
        .unwrap_or("NONE");
    let array_format = match transform
        .and_then(|t| t.pointer("/RequestEncodingOptions/ArrayFormat"))
        .and_then(Value::as_str)
        .unwrap_or("INDICES")
    {
        "INDICES" => ArrayFormat::Indices,
        "BRACKETS" => ArrayFormat::Brackets,
        "REPEAT" => ArrayFormat::Repeat,
        "COMMAS" => ArrayFormat::Commas,
        other => {
            return Err(bad(format!(
                "ArrayFormat {other:?} is not one of INDICES, BRACKETS, REPEAT, COMMAS"
            )))
        }
    };
    let body = match (input.get("RequestBody"), encoding) {
        (None, _) => None,
        (Some(v), "URL_ENCODED") => {
            let mut pairs = Vec::new();
            flatten("", v, array_format, 0, &mut pairs)?;
            let text = form_urlencoded_pairs(&pairs);
            Some((text.into_bytes(), "application/x-www-form-urlencoded"))
        }
        (Some(Value::String(s)), "NONE") => Some((s.as_bytes().to_vec(), "text/plain")),
        (Some(v), "NONE") => Some((
            serde_json::to_vec(v).map_err(|e| bad(e.to_string()))?,
            "application/json",
        )),
        (_, other) => {
            return Err(bad(format!(
                "RequestBodyEncoding {other:?} is not NONE or URL_ENCODED"
            )))
        }
    };
    Ok(Request {
        url,
        method,
        headers,
        body,
    })
}

fn form_urlencoded_pairs(pairs: &[(String, String)]) -> String {
    let mut u = reqwest::Url::parse("http://x/").expect("a constant URL parses");
    u.query_pairs_mut().extend_pairs(pairs);
    u.query().unwrap_or_default().to_string()
}

/// The connection whose prefix is the longest match for this URL.
fn connection_for<'a>(cfg: &'a TasksConfig, url: &reqwest::Url) -> Option<&'a HttpConnection> {
    cfg.http
        .connections
        .iter()
        .filter(|c| url.as_str().starts_with(&c.prefix))
        .max_by_key(|c| c.prefix.len())
}

fn response_value(resp: &net::Response) -> Value {
    let mut headers = Map::new();
    for name in resp.headers.keys() {
        let values: Vec<Value> = resp
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        headers.insert(name.as_str().into(), Value::Array(values.into()));
    }
    let is_json = resp
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false);
    let text = || Value::from(String::from_utf8_lossy(&resp.body).into_owned());
    let body = if is_json {
        serde_json::from_slice(&resp.body).unwrap_or_else(|_| text())
    } else {
        text()
    };
    json!({
        "Headers": headers,
        "ResponseBody": body,
        "StatusCode": resp.status.as_u16().to_string(),
        "StatusText": resp.status.canonical_reason().unwrap_or(""),
    })
}

impl TaskHandler for Http {
    fn call(&self, call: TaskCall<'_>) -> TaskFuture {
        let (cfg, limits) = (Arc::clone(&self.cfg), Arc::clone(&self.limits));
        let trace = self.trace.clone();
        let resource = call.resource.to_string();
        let input = call.input;
        let limit = self.cfg.call_limit(call.timeout);
        Box::pin(async move {
            let r = build(&input)?;
            if !cfg.allows(&r.url) {
                return Err(cfg.refusal(&r.url));
            }
            let mut url = r.url;
            // Kept only when traced: an untraced call copies nothing more than before.
            let url_without_secrets = trace.as_ref().map(|_| url.clone());
            let conn = connection_for(&cfg, &url);
            if let Some(c) = conn {
                url.query_pairs_mut().extend_pairs(&c.query_parameters);
            }
            let mut req = net::client()?.request(r.method, url);
            let mut has_content_type = false;
            for (k, v) in &r.headers {
                has_content_type |= k.eq_ignore_ascii_case("content-type");
                req = req.header(k.as_str(), v.as_str());
            }
            if let Some(c) = conn {
                for (k, v) in &c.headers {
                    req = req.header(k.as_str(), v.as_str());
                }
                if let Some(b) = &c.basic {
                    req = req.basic_auth(&b.username, Some(&b.password));
                }
            }
            if let Some((bytes, content_type)) = r.body {
                if !has_content_type {
                    req = req.header("content-type", content_type);
                }
                req = req.body(bytes);
            }
            if let (Some(t), Some(plain_url)) = (&trace, &url_without_secrets) {
                // The request as it is sent, read from the built request itself.
                let client = net::client()?;
                let built = req
                    .build()
                    .map_err(|e| bad(format!("the HTTP request cannot be built: {e}")))?;
                let exchange = exchange_of(&built, plain_url, conn, &r.headers);
                *t.lock().unwrap_or_else(|p| p.into_inner()) = Some(exchange);
                req = reqwest::RequestBuilder::from_parts(client, built);
            }
            let _slot = limits.acquire(&resource).await;
            let resp = net::send(req, limit)
                .await
                .map_err(|e| e.into_workflow(names::TASK_FAILED, "the HTTP call failed", limit))?;
            if let Some(t) = &trace {
                if let Some(x) = t.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                    x.response = Some(ExchangeResponse {
                        status_code: resp.status.as_u16(),
                        status_message: resp.status.canonical_reason().unwrap_or("").to_string(),
                        headers: resp
                            .headers
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.as_str().to_string(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect(),
                        body: String::from_utf8_lossy(&resp.body).into_owned(),
                    });
                }
            }
            let out = response_value(&resp);
            if !resp.status.is_success() {
                return Err(WorkflowError::new(
                    format!("States.Http.StatusCode.{}", resp.status.as_u16()),
                    out.to_string(),
                ));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_follows_the_array_format() {
        let body = json!({"a": ["x", "y"], "o": {"k": 1}});
        let enc = |f| {
            let mut out = Vec::new();
            flatten("", &body, f, 0, &mut out).unwrap();
            form_urlencoded_pairs(&out)
        };
        assert_eq!(
            enc(ArrayFormat::Indices),
            "a%5B0%5D=x&a%5B1%5D=y&o%5Bk%5D=1"
        );
        assert_eq!(enc(ArrayFormat::Brackets), "a%5B%5D=x&a%5B%5D=y&o%5Bk%5D=1");
        assert_eq!(enc(ArrayFormat::Repeat), "a=x&a=y&o%5Bk%5D=1");
        assert_eq!(enc(ArrayFormat::Commas), "a=x%2Cy&o%5Bk%5D=1");
    }

    #[test]
    fn arguments_build_the_request() {
        let r = build(&json!({
            "ApiEndpoint": "http://127.0.0.1:9/items",
            "Method": "post",
            "Headers": {"x-trace": "t1"},
            "QueryParameters": {"q": "a b", "n": 2},
            "RequestBody": {"id": 7},
        }))
        .unwrap();
        assert_eq!(r.url.as_str(), "http://127.0.0.1:9/items?q=a+b&n=2");
        assert_eq!(r.method, reqwest::Method::POST);
        assert_eq!(
            r.body.unwrap(),
            (br#"{"id":7}"#.to_vec(), "application/json")
        );
        assert!(build(&json!({"ApiEndpoint": "ftp://x", "Method": "GET"})).is_err());
        assert!(build(&json!({"ApiEndpoint": "http://x/", "Method": "BREW"})).is_err());
        assert!(build(
            &json!({"ApiEndpoint": "http://x/", "Method": "GET", "Headers": {"Host": "y"}})
        )
        .is_err());
    }

    #[test]
    fn the_longest_connection_prefix_wins() {
        let mut cfg = TasksConfig::default();
        for p in ["http://127.0.0.1:9/", "http://127.0.0.1:9/v1/"] {
            cfg.http.connections.push(HttpConnection {
                prefix: p.into(),
                headers: Default::default(),
                query_parameters: Default::default(),
                basic: None,
            });
        }
        let url = reqwest::Url::parse("http://127.0.0.1:9/v1/x").unwrap();
        assert_eq!(
            connection_for(&cfg, &url).unwrap().prefix,
            "http://127.0.0.1:9/v1/"
        );
    }

    #[test]
    fn a_traced_request_names_headers_as_they_were_written() {
        let conn = HttpConnection {
            prefix: "http://127.0.0.1:9/".into(),
            headers: [("X-Api-Key".to_string(), "k".to_string())].into(),
            query_parameters: Default::default(),
            basic: None,
        };
        let url = reqwest::Url::parse("http://127.0.0.1:9/x").unwrap();
        let req = reqwest::Client::new()
            .get(url.clone())
            .header("X-Trace", "t1")
            .header("X-Api-Key", "k")
            .header("content-type", "text/plain")
            .build()
            .unwrap();
        let written = [("X-Trace".to_string(), "t1".to_string())];
        let x = exchange_of(&req, &url, Some(&conn), &written);
        let names: Vec<(&str, bool)> = x.headers.iter().map(|(k, _, s)| (k.as_str(), *s)).collect();
        // What nobody spelled keeps the client's lower case.
        assert_eq!(
            names,
            [
                ("X-Trace", false),
                ("X-Api-Key", true),
                ("content-type", false)
            ]
        );
    }
}
