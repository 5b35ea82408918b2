//! AWS's names for a refused call, so Retry and Catch blocks copied from AWS's docs match.
//!
//! Step Functions names a service error `Service.ExceptionName`. The optimized integrations
//! (`dynamodb:putItem`, `sns:publish`, ...) run on the AWS SDK for Java 1.x: prefix
//! `DynamoDB`/`SQS`/`SNS`/`EventBridge`, unmodeled errors become the base exception
//! (`DynamoDB.AmazonDynamoDBException`) and the cause reads `message (Service:
//! AmazonDynamoDBv2; Status Code: 400; Error Code: ...; Request ID: ...; Proxy: null)`.
//! The aws-sdk integration runs on the 2.x SDK: prefix and base from the client name
//! (`DynamoDb.ResourceNotFoundException`, `DynamoDb.DynamoDbException`) and the cause
//! `message (Service: DynamoDb, Status Code: 400, Request ID: ...)`. Both add the
//! `Exception` suffix a code lacks (`NotFound` -> `SNS.NotFoundException`). These shapes
//! are the ones recorded from AWS in the conformance corpus.

use crate::value::Value;
use reqwest::header::HeaderMap;

use super::services::GENERIC_CODES;
use crate::error::WorkflowError;

/// How a family of integrations names its errors.
#[derive(Debug, Clone)]
pub struct Style {
    /// The `Prefix.` of error names.
    pub prefix: &'static str,
    /// The exception an error the SDK does not model becomes.
    pub base: String,
    /// The service as the cause names it.
    pub cause_service: &'static str,
    /// Java SDK 1.x cause format (optimized integrations), else 2.x (aws-sdk).
    pub v1: bool,
    /// Generic codes this service models all the same.
    pub modeled: &'static [&'static str],
}

impl Style {
    /// An optimized integration's style (`DynamoDB`, `AmazonDynamoDBException`, `AmazonDynamoDBv2`).
    pub fn v1(prefix: &'static str, base: &str, cause_service: &'static str) -> Style {
        Style {
            prefix,
            base: base.to_string(),
            cause_service,
            v1: true,
            modeled: &[],
        }
    }

    /// The aws-sdk integration's style for a service whose SDK client is `sdk_name`.
    pub fn v2(sdk_name: &'static str, modeled: &'static [&'static str]) -> Style {
        Style {
            prefix: sdk_name,
            base: format!("{sdk_name}Exception"),
            cause_service: sdk_name,
            v1: false,
            modeled,
        }
    }

    /// The name of a call that got no answer (`SQS.SdkClientException`).
    pub fn unreachable(&self) -> String {
        format!("{}.SdkClientException", self.prefix)
    }

    /// The error for a refused call: `code` as the service sent it (`None` when it sent
    /// none), its message, and the legacy code to show in a 1.x cause if there is one.
    pub fn error(
        &self,
        status: u16,
        headers: &HeaderMap,
        code: Option<&str>,
        shown_code: Option<&str>,
        message: Option<&str>,
    ) -> WorkflowError {
        let code = code
            // `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException`, or a header's
            // `ThrottlingException:http://internal.amazon.com/...`.
            .map(|c| c.rsplit('#').next().unwrap_or(c))
            .map(|c| c.split(':').next().unwrap_or(c).trim())
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        let code = code.unwrap_or_else(|| {
            match status {
                429 => "ThrottlingException",
                500 => "InternalServerError",
                503 => "ServiceUnavailable",
                _ => "",
            }
            .to_string()
        });
        let exception = if code.is_empty()
            || (GENERIC_CODES.contains(&code.as_str()) && !self.modeled.contains(&code.as_str()))
        {
            self.base.clone()
        } else if code.ends_with("Exception") {
            code.clone()
        } else {
            format!("{code}Exception")
        };
        let request_id = request_id(headers);
        let message = message.unwrap_or("");
        let cause = if self.v1 {
            let shown = shown_code.unwrap_or(&code);
            format!(
                "{message} (Service: {}; Status Code: {status}; Error Code: {shown}; Request ID: {request_id}; Proxy: null)",
                self.cause_service
            )
        } else {
            format!(
                "{message} (Service: {}, Status Code: {status}, Request ID: {request_id})",
                self.cause_service
            )
        };
        WorkflowError::new(format!("{}.{exception}", self.prefix), cause)
    }

    /// The error for a refused JSON-protocol call (`__type` or `X-Amzn-ErrorType`, `message`).
    pub fn json_error(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> WorkflowError {
        let parsed = serde_json::from_slice::<Value>(body).ok();
        let field = |k: &str| parsed.as_ref()?.get(k)?.as_str();
        let header = |k: &str| headers.get(k)?.to_str().ok();
        let code = field("__type")
            .or_else(|| header("x-amzn-errortype"))
            .or_else(|| field("code"));
        // Services that moved from the Query protocol (SQS) still send the old code.
        let legacy = header("x-amzn-query-error").and_then(|v| v.split(';').next());
        let message = field("message")
            .or_else(|| field("Message"))
            .map(str::to_string)
            .unwrap_or_else(|| excerpt(body));
        self.error(status, headers, code, legacy, Some(&message))
    }
}

/// The request id AWS sent (`x-amzn-RequestId`, or S3-style `x-amz-request-id`).
pub fn request_id(headers: &HeaderMap) -> String {
    ["x-amzn-requestid", "x-amz-request-id"]
        .iter()
        .find_map(|k| headers.get(*k)?.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The start of a body that is not the expected format, for a cause.
pub fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(512).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn dynamodb_json_errors_get_optimized_and_sdk_names() {
        let body = br#"{"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "message": "The conditional request failed"}"#;
        let h = headers(&[("x-amzn-requestid", "R1")]);
        let v1 = Style::v1("DynamoDB", "AmazonDynamoDBException", "AmazonDynamoDBv2");
        let e = v1.json_error(400, &h, body);
        assert_eq!(
            e.error.as_deref(),
            Some("DynamoDB.ConditionalCheckFailedException")
        );
        assert_eq!(
            e.cause.as_deref(),
            Some("The conditional request failed (Service: AmazonDynamoDBv2; Status Code: 400; Error Code: ConditionalCheckFailedException; Request ID: R1; Proxy: null)")
        );
        let v2 = Style::v2("DynamoDb", &[]);
        let e = v2.json_error(400, &h, br#"{"__type": "x#ResourceNotFoundException", "message": "Requested resource not found"}"#);
        assert_eq!(
            e.error.as_deref(),
            Some("DynamoDb.ResourceNotFoundException")
        );
        assert_eq!(
            e.cause.as_deref(),
            Some("Requested resource not found (Service: DynamoDb, Status Code: 400, Request ID: R1)")
        );
    }

    #[test]
    fn unmodeled_codes_become_the_base_exception_unless_the_service_models_them() {
        let body =
            br#"{"__type": "com.amazon.coral.validate#ValidationException", "message": "bad"}"#;
        let h = HeaderMap::new();
        let v1 = Style::v1("DynamoDB", "AmazonDynamoDBException", "AmazonDynamoDBv2");
        let e = v1.json_error(400, &h, body);
        assert_eq!(e.error.as_deref(), Some("DynamoDB.AmazonDynamoDBException"));
        assert!(e.cause.unwrap().contains("Error Code: ValidationException"));
        assert_eq!(
            Style::v2("DynamoDb", &[])
                .json_error(400, &h, body)
                .error
                .as_deref(),
            Some("DynamoDb.DynamoDbException")
        );
        assert_eq!(
            Style::v2("Sfn", &["ValidationException"])
                .json_error(400, &h, body)
                .error
                .as_deref(),
            Some("Sfn.ValidationException")
        );
    }

    #[test]
    fn throttling_and_server_faults_have_names_without_a_body() {
        let v1 = Style::v1("SQS", "AmazonSQSException", "AmazonSQS");
        let h = HeaderMap::new();
        assert_eq!(
            v1.json_error(429, &h, b"").error.as_deref(),
            Some("SQS.ThrottlingException")
        );
        assert_eq!(
            v1.json_error(500, &h, b"<html>").error.as_deref(),
            Some("SQS.InternalServerErrorException")
        );
        assert_eq!(
            v1.json_error(503, &h, b"").error.as_deref(),
            Some("SQS.ServiceUnavailableException")
        );
        let h = headers(&[(
            "x-amzn-errortype",
            "ProvisionedThroughputExceededException:http://internal",
        )]);
        assert_eq!(
            Style::v1("DynamoDB", "AmazonDynamoDBException", "AmazonDynamoDBv2")
                .json_error(400, &h, b"{}")
                .error
                .as_deref(),
            Some("DynamoDB.ProvisionedThroughputExceededException")
        );
    }

    #[test]
    fn sqs_errors_show_the_legacy_query_code_in_the_cause() {
        let h = headers(&[(
            "x-amzn-query-error",
            "AWS.SimpleQueueService.NonExistentQueue;Sender",
        )]);
        let body = br#"{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "The specified queue does not exist."}"#;
        let e = Style::v1("SQS", "AmazonSQSException", "AmazonSQS").json_error(400, &h, body);
        assert_eq!(e.error.as_deref(), Some("SQS.QueueDoesNotExistException"));
        assert!(e
            .cause
            .unwrap()
            .contains("Error Code: AWS.SimpleQueueService.NonExistentQueue;"));
    }
}
