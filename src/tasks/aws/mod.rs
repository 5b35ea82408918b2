//! AWS service integrations, request-response as Express workflows allow, through one
//! signed caller per protocol.
//!
//! - JSON protocol (`X-Amz-Target`, `application/x-amz-json-1.0|1.1`): the optimized
//!   `dynamodb:getItem|putItem|updateItem|deleteItem`, `sqs:sendMessage`,
//!   `events:putEvents`, and `aws-sdk:SERVICE:ACTION` for the services in [`services`].
//! - Query protocol (form POST, XML answer): `sns:publish`.
//!
//! Arguments are the API's own request fields. As on AWS, the optimized DynamoDB, SQS and
//! SNS results carry `SdkHttpMetadata` and `SdkResponseMetadata`; `events:putEvents`
//! fails with `EventBridge.FailedEntry` when an entry failed; aws-sdk results are the
//! bare response, in PascalCase even for camelCase services. Errors carry AWS's names
//! ([`errors`]). Calls go to `[tasks.aws] endpoints.SERVICE`, else `[tasks.aws] endpoint`,
//! else `https://PREFIX.REGION.amazonaws.com` (whose host must be in `allow_hosts`), and
//! are always SigV4-signed with credentials from [`credentials`].

pub mod credentials;
pub mod errors;
pub mod query;
pub mod services;
pub mod sign;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::json;
use crate::value::{Map, Value};
use serde::Deserialize;

use self::errors::Style;
use self::services::Service;
use super::net::{self, Limits, TasksConfig};
use super::{TaskCall, TaskFuture, TaskHandler};
use crate::error::{names, WorkflowError};

/// Deepest nesting whose keys the camelCase <-> PascalCase conversion rewrites.
const MAX_CASE_DEPTH: usize = 64;

/// `[tasks.aws]`: where AWS service integrations send their calls.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Region of every call (else `AWS_REGION`, `AWS_DEFAULT_REGION`, then us-east-1).
    #[serde(default)]
    pub region: Option<String>,
    /// One endpoint for every service (moto or LocalStack serve all on one port).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Endpoint per service, by the name in the resource (`dynamodb`, `sqs`, `sns`,
    /// `events`, `eventbridge`, `sfn`, ...) or its endpoint prefix; a named endpoint is
    /// allowed by being named.
    #[serde(default)]
    pub endpoints: BTreeMap<String, String>,
}

impl AwsConfig {
    /// Checks the URLs and the region.
    pub fn check(&self) -> Result<(), String> {
        let urls = self
            .endpoints
            .iter()
            .map(|(k, v)| (format!("tasks.aws.endpoints.{k}"), v))
            .chain(
                self.endpoint
                    .iter()
                    .map(|v| ("tasks.aws.endpoint".into(), v)),
            );
        for (key, url) in urls {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => return Err(format!("{key}: {url:?} is not an http(s) URL")),
            }
        }
        for key in self.endpoints.keys() {
            let known = key == "sns"
                || services::SERVICES
                    .iter()
                    .any(|s| endpoint_keys(s).contains(&key.as_str()));
            if !known {
                return Err(format!(
                    "tasks.aws.endpoints.{key}: no such service (sns, or one of: {})",
                    services::SERVICES
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if let Some(r) = &self.region {
            if !valid_region(r) {
                return Err(format!("tasks.aws.region {r:?} is not a region name"));
            }
        }
        Ok(())
    }

    fn region(&self) -> String {
        self.region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .filter(|r| valid_region(r))
            .unwrap_or_else(|| "us-east-1".into())
    }
}

fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What a resource asks for.
#[derive(Debug, PartialEq)]
enum Integration {
    /// An optimized JSON-protocol integration (DynamoDB, SQS, EventBridge).
    Optimized {
        service: &'static Service,
        /// The API operation (`PutItem`).
        operation: &'static str,
    },
    /// `sns:publish`.
    SnsPublish,
    /// `aws-sdk:SERVICE:action`.
    Sdk {
        service: &'static Service,
        operation: String,
    },
}

const PREFIX: &str = "arn:aws:states:::";

impl Integration {
    /// Reads a resource; `None` if it is no AWS service integration, `Err` if it is one
    /// that cannot be called.
    fn parse(resource: &str) -> Option<Result<Integration, String>> {
        let rest = resource.strip_prefix(PREFIX)?;
        let optimized = |service: &str, operation| {
            Some(Ok(Integration::Optimized {
                service: services::find(service).expect("the optimized services are in the table"),
                operation,
            }))
        };
        match rest {
            "dynamodb:getItem" => optimized("dynamodb", "GetItem"),
            "dynamodb:putItem" => optimized("dynamodb", "PutItem"),
            "dynamodb:updateItem" => optimized("dynamodb", "UpdateItem"),
            "dynamodb:deleteItem" => optimized("dynamodb", "DeleteItem"),
            "sqs:sendMessage" => optimized("sqs", "SendMessage"),
            "events:putEvents" => optimized("eventbridge", "PutEvents"),
            "sns:publish" => Some(Ok(Integration::SnsPublish)),
            _ => {
                if rest.contains('.') {
                    // `.sync` and `.waitForTaskToken`: validation explains why Express refuses them.
                    return None;
                }
                if let Some(sdk) = rest.strip_prefix("aws-sdk:") {
                    let (name, action) = sdk.split_once(':')?;
                    return Some(Self::sdk(name, action));
                }
                // Another action of an optimized service: the aws-sdk form reaches it.
                let (service, action) = rest.split_once(':')?;
                let sdk_name = match service {
                    "dynamodb" | "sqs" => service,
                    "events" => "eventbridge",
                    "sns" => {
                        return Some(Err(format!("{resource}: only sns:publish is supported")))
                    }
                    _ => return None,
                };
                Some(Err(format!(
                    "{resource} is not an optimized integration here (dynamodb:getItem|putItem|updateItem|deleteItem, \
                     sqs:sendMessage, events:putEvents, sns:publish): arn:aws:states:::aws-sdk:{sdk_name}:{action} calls the API action"
                )))
            }
        }
    }

    fn sdk(name: &str, action: &str) -> Result<Integration, String> {
        let service = services::find(name)?;
        let ok = !action.is_empty()
            && action.len() <= 128
            && action.bytes().all(|b| b.is_ascii_alphanumeric())
            && action.as_bytes()[0].is_ascii_lowercase();
        if !ok {
            return Err(format!(
                "aws-sdk:{name}:{action}: the action must be the API's name in camelCase (e.g. getItem)"
            ));
        }
        let mut operation = action.to_string();
        operation[..1].make_ascii_uppercase();
        Ok(Integration::Sdk { service, operation })
    }

    /// The service's resource name, endpoint prefix and signing name.
    fn service_names(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            Integration::Optimized { service, .. } | Integration::Sdk { service, .. } => {
                (service.name, service.endpoint_prefix, service.signing_name)
            }
            Integration::SnsPublish => ("sns", "sns", "sns"),
        }
    }

    /// The `[tasks.aws] endpoints` keys that name this service, in lookup order.
    fn endpoint_keys(&self) -> Vec<&'static str> {
        match self {
            Integration::Optimized { service, .. } | Integration::Sdk { service, .. } => {
                endpoint_keys(service)
            }
            Integration::SnsPublish => vec!["sns"],
        }
    }

    fn style(&self) -> Style {
        match self {
            Integration::Optimized { service, .. } => match service.name {
                "dynamodb" => Style::v1("DynamoDB", "AmazonDynamoDBException", "AmazonDynamoDBv2"),
                "sqs" => Style::v1("SQS", "AmazonSQSException", "AmazonSQS"),
                _ => Style::v1(
                    "EventBridge",
                    "AmazonEventBridgeException",
                    "AmazonEventBridge",
                ),
            },
            Integration::SnsPublish => Style::v1("SNS", "AmazonSNSException", "AmazonSNS"),
            Integration::Sdk { service, .. } => Style::v2(service.sdk_name, service.modeled),
        }
    }
}

/// Whether a resource is an AWS service integration this module answers (or refuses
/// with a reason).
pub fn handles(resource: &str) -> bool {
    Integration::parse(resource).is_some()
}

/// Calls AWS services for every integration above.
pub struct Aws {
    cfg: Arc<TasksConfig>,
    limits: Arc<Limits>,
}

impl Aws {
    /// A caller using this config and these limits.
    pub fn new(cfg: Arc<TasksConfig>, limits: Arc<Limits>) -> Self {
        Self { cfg, limits }
    }
}

fn bad(why: impl Into<String>) -> WorkflowError {
    WorkflowError::new(names::TASK_FAILED, why)
}

/// Where a call goes and the region it is signed for.
#[derive(Debug)]
struct Target {
    url: reqwest::Url,
    region: String,
}

/// The names of a service `[tasks.aws] endpoints` accepts: resource name, aliases,
/// endpoint prefix, signing name.
fn endpoint_keys(s: &Service) -> Vec<&'static str> {
    let mut keys = vec![s.name];
    keys.extend(s.aliases);
    keys.extend([s.endpoint_prefix, s.signing_name]);
    keys
}

fn target(cfg: &TasksConfig, integration: &Integration) -> Result<Target, WorkflowError> {
    let (name, prefix, _) = integration.service_names();
    let keys = integration.endpoint_keys();
    let aws = &cfg.aws;
    let region = aws.region();
    let configured = keys
        .iter()
        .find_map(|k| aws.endpoints.get(*k))
        .or(aws.endpoint.as_ref());
    if let Some(url) = configured {
        let url = reqwest::Url::parse(url)
            .map_err(|e| bad(format!("tasks.aws endpoint {url:?}: {e}")))?;
        return Ok(Target { url, region });
    }
    let url = reqwest::Url::parse(&format!("https://{prefix}.{region}.amazonaws.com/"))
        .map_err(|e| bad(format!("region {region:?}: {e}")))?;
    if !cfg.allows(&url) {
        return Err(bad(format!(
            "no endpoint is configured for {} and AWS's endpoint {} is not allowed: set \
             [tasks.aws] endpoints.{} (or endpoint), or add {:?} to [tasks] allow_hosts",
            name,
            url.as_str().trim_end_matches('/'),
            name,
            url.host_str().unwrap_or_default()
        )));
    }
    Ok(Target { url, region })
}

/// What a service answered with a 2xx status.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

/// Reads a failed answer into the task error AWS would give.
type ErrorReader = fn(&Style, u16, &reqwest::header::HeaderMap, &[u8]) -> WorkflowError;

/// Signs and sends one POST within the call limits; a non-2xx answer is returned as an
/// error named by `on_error`.
#[allow(clippy::too_many_arguments)]
async fn post(
    cfg: &TasksConfig,
    limits: &Limits,
    resource: &str,
    integration: &Integration,
    style: &Style,
    mut headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    on_error: ErrorReader,
    limit: Duration,
) -> Result<Answer, WorkflowError> {
    let (name, _, signing) = integration.service_names();
    let t = target(cfg, integration)?;
    let creds = credentials::load(cfg, &t.region)
        .await
        .map_err(|why| bad(format!("cannot sign the {name} call: {why}")))?;
    let signed = sign::sign(creds, "POST", &t.url, &headers, &body, &t.region, signing)?;
    headers.extend(signed);
    let mut req = net::client()?.post(t.url).body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let _slot = limits.acquire(resource).await;
    let resp = net::send(req, limit).await.map_err(|e| {
        e.into_workflow(
            &style.unreachable(),
            "Unable to execute HTTP request",
            limit,
        )
    })?;
    if !resp.status.is_success() {
        return Err(on_error(
            style,
            resp.status.as_u16(),
            &resp.headers,
            &resp.body,
        ));
    }
    Ok(Answer {
        status: resp.status.as_u16(),
        headers: resp.headers,
        body: resp.body,
    })
}

/// `SdkHttpMetadata` and `SdkResponseMetadata` as the Java SDK 1.x integrations return them.
pub fn sdk_metadata(status: u16, headers: &reqwest::header::HeaderMap) -> (Value, Value) {
    let mut all = Map::new();
    let mut one = Map::new();
    for name in headers.keys() {
        let values: Vec<Value> = headers
            .get_all(name)
            .iter()
            .map(|v| Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        if let Some(Value::String(first)) = values.first() {
            one.insert(name.as_str().into(), Value::from(first.clone()));
        }
        all.insert(name.as_str().into(), Value::Array(values.into()));
    }
    (
        json!({"AllHttpHeaders": all, "HttpHeaders": one, "HttpStatusCode": status}),
        json!({"RequestId": errors::request_id(headers)}),
    )
}

fn with_metadata(mut out: Map, a: &Answer) -> Value {
    let (http, response) = sdk_metadata(a.status, &a.headers);
    out.insert("SdkHttpMetadata".into(), http);
    out.insert("SdkResponseMetadata".into(), response);
    Value::Object(out)
}

/// A JSON answer's object (an empty body is `{}`).
fn json_object(body: &[u8]) -> Result<Map, WorkflowError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad(format!(
            "the service answered with something other than a JSON object: {}",
            errors::excerpt(body)
        ))),
    }
}

/// Rewrites every object key's first letter (`upper`: PascalCase, else camelCase).
fn recase(v: Value, upper: bool, depth: usize) -> Value {
    match v {
        Value::Object(m) if depth < MAX_CASE_DEPTH => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let mut k = k.into_string();
                    if let Some(first) = k.get(..1) {
                        let changed = if upper {
                            first.to_ascii_uppercase()
                        } else {
                            first.to_ascii_lowercase()
                        };
                        k.replace_range(..1, &changed);
                    }
                    (k, recase(v, upper, depth + 1))
                })
                .collect(),
        ),
        Value::Array(a) if depth < MAX_CASE_DEPTH => {
            Value::Array(a.into_iter().map(|v| recase(v, upper, depth + 1)).collect())
        }
        other => other,
    }
}

/// The optimized EventBridge resource.
const PUT_EVENTS: &str = "arn:aws:states:::events:putEvents";

/// Appends `ids` to the `Resources` of every entry of a PutEvents request (creating it);
/// entries that are not objects are left for EventBridge to refuse.
fn append_resources(input: &mut Value, ids: &[String]) {
    let Some(Value::Array(entries)) = input.get_mut("Entries") else {
        return;
    };
    for e in entries.iter_mut().filter_map(Value::as_object_mut) {
        let resources = e
            .entry("Resources")
            .or_insert_with(|| Value::Array(Default::default()));
        if let Value::Array(list) = resources {
            list.extend(ids.iter().cloned().map(Value::from));
        }
    }
}

/// The request body of an optimized integration: its arguments, with the values AWS
/// serializes for the user turned to JSON text.
fn optimized_body(operation: &str, mut input: Value) -> Result<Vec<u8>, WorkflowError> {
    if !input.is_object() {
        return Err(bad(format!("{operation} takes an object of arguments")));
    }
    match operation {
        "SendMessage" => {
            if let Some(body) = input.get_mut("MessageBody") {
                if !body.is_string() {
                    *body = Value::from(body.to_string());
                }
            }
        }
        "PutEvents" => {
            if let Some(Value::Array(entries)) = input.get_mut("Entries") {
                for e in entries {
                    if let Some(d) = e.get_mut("Detail") {
                        if !d.is_string() {
                            *d = Value::from(d.to_string());
                        }
                    }
                }
            }
        }
        _ => {}
    }
    serde_json::to_vec(&input).map_err(|e| bad(e.to_string()))
}

async fn call_service(
    cfg: &TasksConfig,
    limits: &Limits,
    resource: &str,
    integration: Integration,
    input: Value,
    limit: Duration,
) -> Result<Value, WorkflowError> {
    let style = integration.style();
    let json_headers = |s: &Service, operation: &str| {
        vec![
            (
                "content-type",
                format!("application/x-amz-json-{}", s.json_version),
            ),
            ("x-amz-target", format!("{}.{operation}", s.target_prefix)),
        ]
    };
    // Every protocol posts with the same call settings; only headers, body and the
    // error reader differ.
    let (integration_ref, style_ref) = (&integration, &style);
    let send = move |headers: Vec<(&'static str, String)>, body: Vec<u8>, on_error: ErrorReader| {
        post(
            cfg,
            limits,
            resource,
            integration_ref,
            style_ref,
            headers,
            body,
            on_error,
            limit,
        )
    };
    match &integration {
        Integration::Optimized { service, operation } => {
            let body = optimized_body(operation, input)?;
            let headers = json_headers(service, operation);
            let a = send(headers, body, Style::json_error).await?;
            let out = json_object(&a.body)?;
            if *operation == "PutEvents" {
                // AWS fails the task when any entry failed, with the answer as the cause.
                let failed = out
                    .get("FailedEntryCount")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let out = Value::Object(out);
                if failed > 0 {
                    return Err(WorkflowError::new(
                        "EventBridge.FailedEntry",
                        out.to_string(),
                    ));
                }
                return Ok(out);
            }
            Ok(with_metadata(out, &a))
        }
        Integration::SnsPublish => {
            let form = query::publish_form(&input)?;
            let body = {
                let mut u = reqwest::Url::parse("http://x/").expect("a constant URL parses");
                u.query_pairs_mut().extend_pairs(&form);
                u.query().unwrap_or_default().as_bytes().to_vec()
            };
            let headers = vec![(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            )];
            let a = send(headers, body, query::query_error).await?;
            Ok(with_metadata(query::publish_result(&a.body)?, &a))
        }
        Integration::Sdk { service, operation } => {
            if !input.is_object() {
                return Err(bad(format!("{resource} takes an object of arguments")));
            }
            let input = if service.camel_case {
                recase(input, false, 0)
            } else {
                input
            };
            let body = serde_json::to_vec(&input).map_err(|e| bad(e.to_string()))?;
            let headers = json_headers(service, operation);
            let a = send(headers, body, Style::json_error).await?;
            let out = Value::Object(json_object(&a.body)?);
            Ok(if service.camel_case {
                recase(out, true, 0)
            } else {
                out
            })
        }
    }
}

impl TaskHandler for Aws {
    fn call(&self, call: TaskCall<'_>) -> TaskFuture {
        let (cfg, limits) = (Arc::clone(&self.cfg), Arc::clone(&self.limits));
        let resource = call.resource.to_string();
        let mut input = call.input;
        let limit = self.cfg.call_limit(call.timeout);
        if resource == PUT_EVENTS {
            // As AWS's optimized integration does (not its aws-sdk form): each event names
            // the execution and the state machine that sent it.
            let ids = [
                call.execution.execution_arn().to_string(),
                call.execution.state_machine_arn(),
            ];
            append_resources(&mut input, &ids);
        }
        Box::pin(async move {
            let integration = match Integration::parse(&resource) {
                Some(Ok(i)) => i,
                Some(Err(why)) => return Err(bad(why)),
                None => {
                    return Err(bad(format!(
                        "{resource:?} is not an AWS service integration"
                    )))
                }
            };
            call_service(&cfg, &limits, &resource, integration, input, limit).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_events_entries_name_the_execution_and_the_machine() {
        let mut input = crate::json!({"Entries": [
            {"Source": "a", "Resources": ["arn:x"]}, {"Source": "b"}, "not an entry"]});
        append_resources(&mut input, &["arn:e".to_string(), "arn:m".to_string()]);
        assert_eq!(
            input,
            crate::json!({"Entries": [
                {"Source": "a", "Resources": ["arn:x", "arn:e", "arn:m"]},
                {"Source": "b", "Resources": ["arn:e", "arn:m"]}, "not an entry"]})
        );
    }

    #[test]
    fn resources_name_their_integration() {
        let p = |r: &str| Integration::parse(r);
        assert!(matches!(
            p("arn:aws:states:::dynamodb:putItem"),
            Some(Ok(Integration::Optimized {
                operation: "PutItem",
                ..
            }))
        ));
        assert_eq!(
            p("arn:aws:states:::sns:publish"),
            Some(Ok(Integration::SnsPublish))
        );
        match p("arn:aws:states:::aws-sdk:sfn:startExecution") {
            Some(Ok(Integration::Sdk { service, operation })) => {
                assert_eq!(
                    (service.name, operation.as_str()),
                    ("sfn", "StartExecution")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(p("arn:aws:states:::aws-sdk:s3:getObject").unwrap().is_err());
        assert!(p("arn:aws:states:::aws-sdk:dynamodb:Get/Item")
            .unwrap()
            .is_err());
        assert_eq!(p("arn:aws:states:::lambda:invoke"), None);
        assert_eq!(p("arn:aws:states:::http:invoke"), None);
        let query = p("arn:aws:states:::dynamodb:query").unwrap().unwrap_err();
        assert!(query.contains("aws-sdk:dynamodb:query"), "{query}");
    }

    #[test]
    fn endpoints_resolve_by_service_then_default_then_aws() {
        let mut cfg = TasksConfig::default();
        cfg.aws.region = Some("eu-west-1".into());
        cfg.aws
            .endpoints
            .insert("events".into(), "http://127.0.0.1:1".into());
        let at = |cfg: &TasksConfig, r: &str| {
            let i = Integration::parse(r).unwrap().unwrap();
            target(cfg, &i).map(|t| t.url.to_string())
        };
        let (events, ddb) = (
            "arn:aws:states:::aws-sdk:eventbridge:putRule",
            "arn:aws:states:::dynamodb:getItem",
        );
        assert_eq!(at(&cfg, events).unwrap(), "http://127.0.0.1:1/");
        assert!(cfg.aws.check().is_ok());
        let refused = at(&cfg, ddb).unwrap_err();
        assert!(refused.cause.unwrap().contains("allow_hosts"), "refused");
        cfg.allow_hosts.push("*.amazonaws.com".into());
        assert_eq!(
            at(&cfg, ddb).unwrap(),
            "https://dynamodb.eu-west-1.amazonaws.com/"
        );
        cfg.aws.endpoint = Some("http://127.0.0.1:2".into());
        assert_eq!(at(&cfg, ddb).unwrap(), "http://127.0.0.1:2/");
        cfg.aws
            .endpoints
            .insert("stepfunctions".into(), "http://127.0.0.1:3".into());
        assert_eq!(
            at(&cfg, "arn:aws:states:::aws-sdk:sfn:startExecution").unwrap(),
            "http://127.0.0.1:3/"
        );
        cfg.aws
            .endpoints
            .insert("dynamo".into(), "http://127.0.0.1:4".into());
        assert!(cfg
            .aws
            .check()
            .unwrap_err()
            .contains("dynamo: no such service"));
    }

    #[test]
    fn camel_case_services_get_pascal_case_both_ways() {
        let v = json!({"StateMachineArn": "a", "Tags": [{"Key": "k"}]});
        let camel = recase(v.clone(), false, 0);
        assert_eq!(
            camel,
            json!({"stateMachineArn": "a", "tags": [{"key": "k"}]})
        );
        assert_eq!(recase(camel, true, 0), v);
    }

    #[test]
    fn optimized_bodies_serialize_what_aws_serializes() {
        let b = optimized_body(
            "SendMessage",
            json!({"QueueUrl": "q", "MessageBody": {"a": 1}}),
        )
        .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&b).unwrap(),
            json!({"QueueUrl": "q", "MessageBody": "{\"a\":1}"})
        );
        let b = optimized_body(
            "PutEvents",
            json!({"Entries": [{"Detail": {"x": 1}}, {"Detail": "{}"}]}),
        )
        .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&b).unwrap(),
            json!({"Entries": [{"Detail": "{\"x\":1}"}, {"Detail": "{}"}]})
        );
        assert!(optimized_body("GetItem", json!([1])).is_err());
    }
}
