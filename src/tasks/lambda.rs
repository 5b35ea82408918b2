//! AWS Lambda through the Invoke API (`POST /2015-03-31/functions/NAME/invocations`).
//!
//! Two resources call it: a function ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`),
//! whose result is the function's payload, and `arn:aws:states:::lambda:invoke`, whose
//! arguments are `FunctionName`, `Payload`, `Qualifier`, `InvocationType` and whose result
//! is AWS's `{ExecutedVersion, Payload, SdkHttpMetadata, SdkResponseMetadata, StatusCode}`.
//!
//! Errors read as on AWS, so Retry and Catch blocks copied from AWS's docs match: a function
//! error (`X-Amz-Function-Error`, or, as the Runtime Interface Emulator answers, a 200 whose
//! body is an `{errorType, errorMessage, ...}` object) has Error = `errorType` and Cause =
//! the whole error payload; a refused call is `Lambda.<ErrorCode>` (`Lambda.ServiceException`,
//! `Lambda.TooManyRequestsException`, ...); no answer at all is `Lambda.SdkClientException`.

use std::sync::Arc;
use std::time::Duration;

use crate::json;

use crate::value::Value;

use super::aws;
use super::net::{self, Limits, TasksConfig};
use super::{TaskCall, TaskFuture, TaskHandler};
use crate::error::{names, WorkflowError};

/// The optimized integration's resource.
pub const INVOKE: &str = "arn:aws:states:::lambda:invoke";

/// Whether a resource is a Lambda function ARN (called with its input as the payload).
pub fn is_function_arn(resource: &str) -> bool {
    let mut parts = resource.split(':');
    parts.next() == Some("arn")
        && parts.next().is_some_and(|p| p.starts_with("aws"))
        && parts.next() == Some("lambda")
        && resource.contains(":function:")
}

/// Calls Lambda functions for both resource forms.
pub struct Lambda {
    cfg: Arc<TasksConfig>,
    limits: Arc<Limits>,
}

impl Lambda {
    /// A caller using these endpoints and limits.
    pub fn new(cfg: Arc<TasksConfig>, limits: Arc<Limits>) -> Self {
        Self { cfg, limits }
    }
}

/// A function as named by a resource or a `FunctionName`.
#[derive(Debug, Clone, PartialEq)]
struct Function {
    /// What the Invoke path names (a name, or an ARN without qualifier).
    name: String,
    /// Region from an ARN.
    region: Option<String>,
    /// Version or alias.
    qualifier: Option<String>,
    /// The bare function name, for config lookups.
    short: String,
}

impl Function {
    /// Reads `name`, `name:qualifier`, `ACCOUNT:function:name[:q]` or a full ARN.
    fn parse(id: &str) -> Result<Function, String> {
        let bad = || format!("{id:?} is not a Lambda function name or ARN");
        let parts: Vec<&str> = id.split(':').collect();
        let ok_name = |s: &str| {
            !s.is_empty()
                && s.len() <= 140
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let ok_qualifier = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_$".contains(&b))
        };
        let (name, region, qualifier, short) = match parts.as_slice() {
            [n] => (n.to_string(), None, None, *n),
            [n, q] => (n.to_string(), None, Some(*q), *n),
            [_, "function", n] | [_, "function", n, _] => {
                (parts[..3].join(":"), None, parts.get(3).copied(), *n)
            }
            ["arn", _, "lambda", region, _, "function", n]
            | ["arn", _, "lambda", region, _, "function", n, _] => {
                let ok_region = !region.is_empty()
                    && region.len() <= 32
                    && region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok_region {
                    return Err(bad());
                }
                (
                    parts[..7].join(":"),
                    Some(region.to_string()),
                    parts.get(7).copied(),
                    *n,
                )
            }
            _ => return Err(bad()),
        };
        if !ok_name(short) || !qualifier.is_none_or(ok_qualifier) {
            return Err(bad());
        }
        Ok(Function {
            name,
            region,
            qualifier: qualifier.map(str::to_string),
            short: short.to_string(),
        })
    }
}

/// Where one call goes.
struct Target {
    base: reqwest::Url,
    /// The region to sign for (AWS's own endpoint, or any with `[tasks.lambda] sign`).
    sign_region: Option<String>,
    /// Whether this is AWS's endpoint (which always flags function errors by header).
    aws: bool,
}

fn target(cfg: &TasksConfig, f: &Function, as_written: &str) -> Result<Target, WorkflowError> {
    let functions = &cfg.lambda.functions;
    let listed = functions
        .get(as_written)
        .or_else(|| functions.get(&f.name))
        .or_else(|| functions.get(&f.short))
        .or_else(|| {
            functions
                .iter()
                .filter_map(|(k, v)| Some((k.strip_suffix('*')?, v)))
                .filter(|(prefix, _)| as_written.starts_with(prefix) || f.name.starts_with(prefix))
                .max_by_key(|(prefix, _)| prefix.len())
                .map(|(_, v)| v)
        })
        .or(cfg.lambda.endpoint.as_ref());
    let config_error = |why: String| WorkflowError::new(names::TASK_FAILED, why);
    let region = f
        .region
        .clone()
        .or_else(|| cfg.lambda.region.clone())
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".into());
    if let Some(url) = listed {
        let base = reqwest::Url::parse(url)
            .map_err(|e| config_error(format!("tasks.lambda endpoint {url:?}: {e}")))?;
        return Ok(Target {
            base,
            sign_region: cfg.lambda.sign.then_some(region),
            aws: false,
        });
    }
    let base = reqwest::Url::parse(&format!("https://lambda.{region}.amazonaws.com"))
        .map_err(|e| config_error(format!("region {region:?}: {e}")))?;
    if !cfg.allows(&base) {
        return Err(WorkflowError::new(
            names::TASK_FAILED,
            format!(
                "no endpoint is configured for Lambda function {:?} and AWS's endpoint {} is not allowed: \
                 bind the function in [tasks.lambda] functions (or set [tasks.lambda] endpoint), \
                 or add {:?} to [tasks] allow_hosts",
                f.short,
                base.as_str().trim_end_matches('/'),
                base.host_str().unwrap_or_default()
            ),
        ));
    }
    Ok(Target {
        base,
        sign_region: Some(region),
        aws: true,
    })
}

/// What Invoke answered.
struct Invoked {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

async fn invoke(
    cfg: &TasksConfig,
    limits: &Limits,
    f: &Function,
    as_written: &str,
    invocation_type: &str,
    payload: Vec<u8>,
    limit: Duration,
) -> Result<Invoked, WorkflowError> {
    let target = target(cfg, f, as_written)?;
    let mut url = target.base.clone();
    // A configured URL that already names the invocation path is used as it is: the
    // emulator serves only `/2015-03-31/functions/function/invocations`.
    if !url.path().ends_with("/invocations") {
        url.path_segments_mut()
            .map_err(|_| {
                WorkflowError::new(names::TASK_FAILED, "the Lambda endpoint is not a base URL")
            })?
            .pop_if_empty()
            .extend(["2015-03-31", "functions", &f.name, "invocations"]);
    }
    if let Some(q) = &f.qualifier {
        url.query_pairs_mut().append_pair("Qualifier", q);
    }
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-amz-invocation-type", invocation_type.to_string()),
    ];
    if let Some(region) = &target.sign_region {
        let creds = aws::credentials::load(cfg, region).await.map_err(|why| {
            WorkflowError::new(
                names::TASK_FAILED,
                format!("cannot sign the Lambda call: {why}"),
            )
        })?;
        headers.extend(aws::sign::sign(
            creds, "POST", &url, &headers, &payload, region, "lambda",
        )?);
    }
    let mut req = net::client()?.post(url).body(payload);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let _slot = limits.acquire(&f.name).await;
    let resp = net::send(req, limit).await.map_err(|e| {
        e.into_workflow(
            "Lambda.SdkClientException",
            &format!(
                "Unable to execute HTTP request to Lambda function {:?}",
                f.short
            ),
            limit,
        )
    })?;
    let status = resp.status.as_u16();
    if !resp.status.is_success() {
        return Err(service_error(status, &resp.headers, &resp.body));
    }
    // The emulator reports a raised exception as a plain 200 with the error payload; real
    // Lambda adds X-Amz-Function-Error. Only configured (non-AWS) endpoints get the guess.
    let function_error = resp.headers.contains_key("x-amz-function-error")
        || (!target.aws && looks_like_error_payload(&resp.body));
    if function_error {
        return Err(function_error_of(&resp.body));
    }
    Ok(Invoked {
        status,
        headers: resp.headers,
        body: resp.body,
    })
}

fn looks_like_error_payload(body: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => {
            m.get("errorType").is_some_and(Value::is_string)
                && m.get("errorMessage").is_some_and(Value::is_string)
                && m.keys().all(|k| {
                    matches!(
                        k.as_str(),
                        "errorType" | "errorMessage" | "requestId" | "stackTrace" | "cause"
                    )
                })
        }
        _ => false,
    }
}

/// A function error as AWS reports it: Error = `errorType`, Cause = the payload text.
fn function_error_of(body: &[u8]) -> WorkflowError {
    let text = String::from_utf8_lossy(body).into_owned();
    let error = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errorType")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "Lambda.Unknown".into());
    WorkflowError::new(error, text)
}

/// A refused Invoke (throttled, not found, service fault) under AWS's `Lambda.` names.
fn service_error(status: u16, headers: &reqwest::header::HeaderMap, body: &[u8]) -> WorkflowError {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let code = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_string())
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let t = parsed.as_ref()?.get("__type")?.as_str()?;
            Some(t.rsplit('#').next().unwrap_or(t).to_string())
        })
        .unwrap_or_else(|| {
            match status {
                429 => "TooManyRequestsException",
                404 => "ResourceNotFoundException",
                500..=599 => "ServiceException",
                _ => "AWSLambdaException",
            }
            .to_string()
        });
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("Message")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            let t = String::from_utf8_lossy(body);
            t.chars().take(512).collect()
        });
    let request_id = headers
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    WorkflowError::new(
        format!("Lambda.{code}"),
        format!(
            "{message} (Service: AWSLambda; Status Code: {status}; Error Code: {code}; Request ID: {request_id}; Proxy: null)"
        ),
    )
}

fn payload_value(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::from(String::new());
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(body).into_owned()))
}

/// The `lambda:invoke` result, shaped as Step Functions returns it.
fn invoke_result(r: Invoked) -> Value {
    let header = |n: &str| {
        r.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (http, response) = aws::sdk_metadata(r.status, &r.headers);
    json!({
        "ExecutedVersion": header("x-amz-executed-version").unwrap_or_else(|| "$LATEST".into()),
        "Payload": payload_value(&r.body),
        "SdkHttpMetadata": http,
        "SdkResponseMetadata": response,
        "StatusCode": r.status,
    })
}

fn bad_argument(why: String) -> WorkflowError {
    WorkflowError::new(names::TASK_FAILED, why)
}

impl TaskHandler for Lambda {
    fn call(&self, call: TaskCall<'_>) -> TaskFuture {
        let (cfg, limits) = (Arc::clone(&self.cfg), Arc::clone(&self.limits));
        let resource = call.resource.to_string();
        let input = call.input;
        let limit = self.cfg.call_limit(call.timeout);
        Box::pin(async move {
            if resource != INVOKE {
                let f = Function::parse(&resource).map_err(bad_argument)?;
                let payload =
                    serde_json::to_vec(&input).map_err(|e| bad_argument(e.to_string()))?;
                let r = invoke(
                    &cfg,
                    &limits,
                    &f,
                    &resource,
                    "RequestResponse",
                    payload,
                    limit,
                )
                .await?;
                return Ok(match payload_value(&r.body) {
                    Value::String(s) if s.is_empty() => Value::Null,
                    v => v,
                });
            }
            let Some(name) = input.get("FunctionName").and_then(Value::as_str) else {
                return Err(bad_argument(
                    "lambda:invoke needs a FunctionName string in its Parameters".into(),
                ));
            };
            let mut f = Function::parse(name).map_err(bad_argument)?;
            if let Some(q) = input.get("Qualifier") {
                let q = q
                    .as_str()
                    .ok_or_else(|| bad_argument("Qualifier must be a string".into()))?;
                f.qualifier = Some(q.to_string());
            }
            let invocation_type = match input.get("InvocationType") {
                None => "RequestResponse",
                Some(Value::String(t))
                    if matches!(t.as_str(), "RequestResponse" | "Event" | "DryRun") =>
                {
                    t
                }
                Some(other) => {
                    return Err(bad_argument(format!(
                        "InvocationType must be RequestResponse, Event or DryRun, not {other}"
                    )))
                }
            };
            // Payload is a JSON value (a string too is sent as JSON text, quoted).
            let payload = match input.get("Payload") {
                None => b"{}".to_vec(),
                Some(v) => serde_json::to_vec(v).map_err(|e| bad_argument(e.to_string()))?,
            };
            let r = invoke(&cfg, &limits, &f, name, invocation_type, payload, limit).await?;
            Ok(invoke_result(r))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_arns_are_recognised_in_every_partition() {
        assert!(is_function_arn("arn:aws:lambda:us-east-1:1:function:F"));
        assert!(is_function_arn(
            "arn:aws-cn:lambda:cn-north-1:1:function:F:live"
        ));
        assert!(!is_function_arn("arn:aws:states:::lambda:invoke"));
        assert!(!is_function_arn("arn:aws:sqs:us-east-1:1:function:F"));
    }

    #[test]
    fn function_names_parse_in_every_form_aws_accepts() {
        let f =
            Function::parse("arn:aws:lambda:eu-west-1:123456789012:function:Charge:live").unwrap();
        assert_eq!(
            f.name,
            "arn:aws:lambda:eu-west-1:123456789012:function:Charge"
        );
        assert_eq!(
            (f.region.as_deref(), f.qualifier.as_deref()),
            (Some("eu-west-1"), Some("live"))
        );
        assert_eq!(f.short, "Charge");
        let f = Function::parse("Charge:7").unwrap();
        assert_eq!(
            (f.name.as_str(), f.qualifier.as_deref()),
            ("Charge", Some("7"))
        );
        let f = Function::parse("123456789012:function:Charge").unwrap();
        assert_eq!(f.name, "123456789012:function:Charge");
        assert!(Function::parse("arn:aws:lambda:evil.com/x:1:function:F").is_err());
        assert!(Function::parse("a/b").is_err());
        assert!(Function::parse("").is_err());
    }

    #[test]
    fn endpoints_resolve_by_name_then_prefix_then_default() {
        let mut cfg = TasksConfig::default();
        cfg.lambda
            .functions
            .insert("Charge".into(), "http://127.0.0.1:1".into());
        cfg.lambda.functions.insert(
            "arn:aws:lambda:us-east-1:1:function:*".into(),
            "http://127.0.0.1:2".into(),
        );
        let at = |id: &str| {
            let f = Function::parse(id).unwrap();
            target(&cfg, &f, id).map(|t| t.base.port())
        };
        assert_eq!(
            at("arn:aws:lambda:eu-west-1:1:function:Charge").unwrap(),
            Some(1)
        );
        assert_eq!(
            at("arn:aws:lambda:us-east-1:1:function:Ship").unwrap(),
            Some(2)
        );
        let refused = at("arn:aws:lambda:eu-west-1:1:function:Ship").unwrap_err();
        assert!(refused.cause.unwrap().contains("allow_hosts"));
        cfg.allow_hosts.push("*.amazonaws.com".into());
        let f = Function::parse("arn:aws:lambda:eu-west-1:1:function:Ship").unwrap();
        let t = target(&cfg, &f, "x").unwrap();
        assert_eq!(t.base.host_str(), Some("lambda.eu-west-1.amazonaws.com"));
        assert_eq!(t.sign_region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn function_errors_keep_the_whole_payload_as_cause() {
        let body = br#"{"errorMessage": "no stock", "errorType": "OutOfStock", "requestId": "r", "stackTrace": []}"#;
        assert!(looks_like_error_payload(body));
        let e = function_error_of(body);
        assert_eq!(e.error.as_deref(), Some("OutOfStock"));
        assert_eq!(e.cause.as_deref(), Some(std::str::from_utf8(body).unwrap()));
        assert!(!looks_like_error_payload(
            br#"{"errorType": "x", "errorMessage": "y", "ok": 1}"#
        ));
    }

    #[test]
    fn refused_calls_get_aws_lambda_error_names() {
        let mut h = reqwest::header::HeaderMap::new();
        let e = service_error(429, &h, br#"{"message": "Rate Exceeded."}"#);
        assert_eq!(e.error.as_deref(), Some("Lambda.TooManyRequestsException"));
        assert!(e
            .cause
            .unwrap()
            .starts_with("Rate Exceeded. (Service: AWSLambda; Status Code: 429"));
        assert_eq!(
            service_error(503, &h, b"").error.as_deref(),
            Some("Lambda.ServiceException")
        );
        h.insert(
            "x-amzn-errortype",
            "EC2ThrottledException:http://internal".parse().unwrap(),
        );
        assert_eq!(
            service_error(502, &h, b"").error.as_deref(),
            Some("Lambda.EC2ThrottledException")
        );
    }
}
