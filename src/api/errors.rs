//! AWS's error shape: `{"__type": "<name>", "message": "..."}` with the status AWS uses.

use serde_json::json;

/// An API call that failed, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// AWS's error name (`StateMachineDoesNotExist`, `ValidationException`, ...); botocore
    /// reads it from `__type`.
    pub kind: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    /// A field is missing, too long or of the wrong kind.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "ValidationException", message)
    }

    /// The body is not the JSON the operation takes.
    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "SerializationException", message)
    }

    /// `X-Amz-Target` names no operation of this service.
    pub fn unknown_operation(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "UnknownOperationException", message)
    }

    /// No state machine has this ARN.
    pub fn no_machine(arn: &str) -> ApiError {
        ApiError::new(
            400,
            "StateMachineDoesNotExist",
            format!("State Machine Does Not Exist: '{arn}'"),
        )
    }

    /// An ARN that is not a state machine ARN.
    pub fn invalid_arn(arn: &str) -> ApiError {
        ApiError::new(400, "InvalidArn", format!("Invalid Arn: '{arn}'"))
    }

    /// The definition does not validate.
    pub fn invalid_definition(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidDefinition", message)
    }

    /// A state machine or execution name AWS would refuse.
    pub fn invalid_name(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidName", message)
    }

    /// The execution input is not JSON or too large.
    pub fn invalid_input(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidExecutionInput", message)
    }

    /// The shards are full: the client should back off and retry.
    pub fn throttled(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "ThrottlingException", message)
    }

    /// The request carries no valid signature where keys are configured.
    pub fn unrecognized_client(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "UnrecognizedClientException", message)
    }

    /// The signature does not match the request.
    pub fn invalid_signature(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidSignatureException", message)
    }

    /// A failure of ours (Kafka unreachable, shutting down); retrying may work.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "ServiceUnavailable", message)
    }

    /// The body is larger than any operation takes.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(413, "RequestEntityTooLargeException", message)
    }

    /// The caller may not do this (AWS: an IAM permission is missing).
    pub fn access_denied(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "AccessDeniedException", message)
    }

    /// The error's body.
    pub fn body(&self) -> Vec<u8> {
        json!({"__type": self.kind, "message": self.message})
            .to_string()
            .into_bytes()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}
