//! The AWS JSON-protocol services `arn:aws:states:::aws-sdk:SERVICE:ACTION` can call.
//!
//! Each row was checked against botocore 1.44's service models (`metadata.targetPrefix`,
//! `jsonVersion`, `signingName`, `endpointPrefix`, member name casing). The name in the
//! resource is the one Step Functions uses: the AWS SDK for Java 2.x client's name in
//! lower case (`cloudwatchlogs`, `sfn`, `eventbridge`), and that client's name is also the
//! prefix of the error names (`DynamoDb.ResourceNotFoundException`).

/// One JSON-protocol service.
#[derive(Debug, PartialEq)]
pub struct Service {
    /// The name in `aws-sdk:NAME:action` resources.
    pub name: &'static str,
    /// Other names accepted for it (botocore's), e.g. `logs` for `cloudwatchlogs`.
    pub aliases: &'static [&'static str],
    /// The SigV4 signing name.
    pub signing_name: &'static str,
    /// The host prefix of its regional endpoint (`https://PREFIX.REGION.amazonaws.com`).
    pub endpoint_prefix: &'static str,
    /// The `X-Amz-Target` prefix (`PREFIX.Operation`).
    pub target_prefix: &'static str,
    /// `1.0` or `1.1`, for `Content-Type: application/x-amz-json-VERSION`.
    pub json_version: &'static str,
    /// The SDK client's name: the `Service.` prefix of error names and the base exception
    /// (`DynamoDbException`) errors the SDK does not model fall back to.
    pub sdk_name: &'static str,
    /// Whether the wire names are camelCase (Step Functions takes and returns PascalCase).
    pub camel_case: bool,
    /// Error codes this service models although most services do not (see [`GENERIC_CODES`]).
    pub modeled: &'static [&'static str],
}

/// Error codes AWS services return without modeling them in their SDKs: the SDK raises
/// its base exception for them (DynamoDB's `ValidationException` is `DynamoDb.DynamoDbException`).
pub const GENERIC_CODES: &[&str] = &[
    "ValidationException",
    "ValidationError",
    "SerializationException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "IncompleteSignature",
    "InvalidClientTokenId",
    "MalformedQueryString",
    "RequestExpired",
    "UnknownOperationException",
    "AccessDeniedException",
];

// One positional row per service keeps the table below readable at a glance.
#[allow(clippy::too_many_arguments)]
const fn json(
    name: &'static str,
    aliases: &'static [&'static str],
    signing_name: &'static str,
    endpoint_prefix: &'static str,
    target_prefix: &'static str,
    json_version: &'static str,
    sdk_name: &'static str,
    camel_case: bool,
) -> Service {
    Service {
        name,
        aliases,
        signing_name,
        endpoint_prefix,
        target_prefix,
        json_version,
        sdk_name,
        camel_case,
        modeled: &[],
    }
}

/// The services, by resource name.
#[rustfmt::skip]
pub static SERVICES: &[Service] = &[
    //   name                       aliases                        signing name               endpoint prefix            target prefix                                             json   SDK client                 camelCase
    json("dynamodb",                &[],                           "dynamodb",                "dynamodb",                "DynamoDB_20120810",                                      "1.0", "DynamoDb",                false),
    json("dynamodbstreams",         &[],                           "dynamodb",                "streams.dynamodb",        "DynamoDBStreams_20120810",                               "1.0", "DynamoDbStreams",         false),
    json("sqs",                     &[],                           "sqs",                     "sqs",                     "AmazonSQS",                                              "1.0", "Sqs",                     false),
    json("eventbridge",             &["events"],                   "events",                  "events",                  "AWSEvents",                                              "1.1", "EventBridge",             false),
    json("kinesis",                 &[],                           "kinesis",                 "kinesis",                 "Kinesis_20131202",                                       "1.1", "Kinesis",                 false),
    json("firehose",                &[],                           "firehose",                "firehose",                "Firehose_20150804",                                      "1.1", "Firehose",                false),
    json("secretsmanager",          &[],                           "secretsmanager",          "secretsmanager",          "secretsmanager",                                         "1.1", "SecretsManager",          false),
    json("ssm",                     &[],                           "ssm",                     "ssm",                     "AmazonSSM",                                              "1.1", "Ssm",                     false),
    json("kms",                     &[],                           "kms",                     "kms",                     "TrentService",                                           "1.1", "Kms",                     false),
    Service {
        modeled: &["ValidationException"],
        ..json("sfn",               &["stepfunctions", "states"],  "states",                  "states",                  "AWSStepFunctions",                                       "1.0", "Sfn",                     true)
    },
    json("cloudwatchlogs",          &["logs"],                     "logs",                    "logs",                    "Logs_20140328",                                          "1.1", "CloudWatchLogs",          true),
    json("cloudwatch",              &[],                           "monitoring",              "monitoring",              "GraniteServiceVersion20100801",                          "1.0", "CloudWatch",              false),
    json("ecs",                     &[],                           "ecs",                     "ecs",                     "AmazonEC2ContainerServiceV20141113",                     "1.1", "Ecs",                     true),
    json("ecr",                     &[],                           "ecr",                     "api.ecr",                 "AmazonEC2ContainerRegistry_V20150921",                   "1.1", "Ecr",                     true),
    json("codebuild",               &[],                           "codebuild",               "codebuild",               "CodeBuild_20161006",                                     "1.1", "CodeBuild",               true),
    json("athena",                  &[],                           "athena",                  "athena",                  "AmazonAthena",                                           "1.1", "Athena",                  false),
    json("glue",                    &[],                           "glue",                    "glue",                    "AWSGlue",                                                "1.1", "Glue",                    false),
    json("acm",                     &[],                           "acm",                     "acm",                     "CertificateManager",                                     "1.1", "Acm",                     false),
    json("cloudtrail",              &[],                           "cloudtrail",              "cloudtrail",              "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101", "1.1", "CloudTrail",              false),
    json("cognitoidentityprovider", &["cognito-idp"],              "cognito-idp",             "cognito-idp",             "AWSCognitoIdentityProviderService",                      "1.1", "CognitoIdentityProvider", false),
    json("applicationautoscaling",  &["application-autoscaling"],  "application-autoscaling", "application-autoscaling", "AnyScaleFrontendService",                                "1.1", "ApplicationAutoScaling",  false),
];

/// Services Step Functions' aws-sdk integration reaches that speak another protocol, with
/// what to use instead.
const OTHER_PROTOCOLS: &[(&str, &str)] = &[
    (
        "sns",
        "SNS speaks the Query protocol: use arn:aws:states:::sns:publish",
    ),
    ("sts", "STS speaks the Query protocol"),
    ("s3", "S3 speaks its own REST/XML protocol"),
    (
        "lambda",
        "Lambda speaks REST/JSON: use arn:aws:states:::lambda:invoke",
    ),
];

/// The service a resource names, or why it cannot be called.
pub fn find(name: &str) -> Result<&'static Service, String> {
    if let Some(s) = SERVICES
        .iter()
        .find(|s| s.name == name || s.aliases.contains(&name))
    {
        return Ok(s);
    }
    let why = OTHER_PROTOCOLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| format!(": {why}"))
        .unwrap_or_default();
    let known: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
    Err(format!(
        "aws-sdk:{name} is not supported{why} (JSON-protocol services: {})",
        known.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_found_by_sdk_name_or_alias_and_others_are_explained() {
        assert_eq!(find("eventbridge").unwrap().target_prefix, "AWSEvents");
        assert_eq!(find("logs").unwrap().name, "cloudwatchlogs");
        assert!(find("sfn").unwrap().camel_case);
        assert!(find("sns").unwrap_err().contains("sns:publish"));
        assert!(find("nosuch").unwrap_err().contains("dynamodb"));
    }
}
