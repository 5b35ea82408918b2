//! The response shapes of the service integrations TestState checks a mocked result
//! against (`mock.fieldValidationMode`). AWS checks a mock against the called API's model;
//! stepstream carries no service models, so this is a small table of the integrations
//! whose answers it knows (the optimized Lambda, Step Functions, EventBridge, SQS, SNS and
//! DynamoDB item integrations). A resource not in the table is not checked, whatever the
//! mode. As on AWS, fields the shape does not name are accepted.

use serde_json::Value;

/// How strictly a mocked result is checked (`mock.fieldValidationMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Required fields present, and every present field of the right type (the default).
    #[default]
    Strict,
    /// Every present field of the right type.
    Present,
    /// No check.
    None,
}

impl FieldValidation {
    /// The mode named by `fieldValidationMode`.
    pub fn parse(name: &str) -> Option<FieldValidation> {
        match name {
            "STRICT" => Some(FieldValidation::Strict),
            "PRESENT" => Some(FieldValidation::Present),
            "NONE" => Some(FieldValidation::None),
            _ => None,
        }
    }
}

/// What a field holds.
enum Shape {
    String,
    Number,
    /// Anything (a Lambda payload, DynamoDB attribute values).
    Any,
    List(&'static Shape),
    Object(&'static [Field]),
}

/// One member of an object shape.
struct Field {
    name: &'static str,
    shape: Shape,
    required: bool,
}

const fn opt(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: false,
    }
}

const fn req(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: true,
    }
}

const LAMBDA_INVOKE: &[Field] = &[
    opt("StatusCode", Shape::Number),
    opt("FunctionError", Shape::String),
    opt("LogResult", Shape::String),
    opt("ExecutedVersion", Shape::String),
    opt("Payload", Shape::Any),
];

// Step Functions answers StartDate as a timestamp string.
const START_EXECUTION: &[Field] = &[
    req("ExecutionArn", Shape::String),
    req("StartDate", Shape::String),
];

const PUT_EVENTS: &[Field] = &[
    opt("FailedEntryCount", Shape::Number),
    opt(
        "Entries",
        Shape::List(&Shape::Object(&[
            opt("EventId", Shape::String),
            opt("ErrorCode", Shape::String),
            opt("ErrorMessage", Shape::String),
        ])),
    ),
];

const SEND_MESSAGE: &[Field] = &[
    opt("MD5OfMessageBody", Shape::String),
    opt("MD5OfMessageAttributes", Shape::String),
    opt("MD5OfMessageSystemAttributes", Shape::String),
    opt("MessageId", Shape::String),
    opt("SequenceNumber", Shape::String),
];

const PUBLISH: &[Field] = &[
    opt("MessageId", Shape::String),
    opt("SequenceNumber", Shape::String),
];

const CAPACITY: &[Field] = &[
    opt("TableName", Shape::String),
    opt("CapacityUnits", Shape::Number),
    opt("ReadCapacityUnits", Shape::Number),
    opt("WriteCapacityUnits", Shape::Number),
];

const DYNAMODB_ITEM: &[Field] = &[
    opt("Item", Shape::Any),
    opt("Attributes", Shape::Any),
    opt("ConsumedCapacity", Shape::Object(CAPACITY)),
    opt("ItemCollectionMetrics", Shape::Any),
];

/// The response shape of the integration `resource` calls, if this table has it.
fn shape_of(resource: &str) -> Option<&'static [Field]> {
    let action = resource.strip_prefix("arn:aws:states:::")?;
    Some(match action {
        "lambda:invoke" => LAMBDA_INVOKE,
        "states:startExecution" => START_EXECUTION,
        "events:putEvents" => PUT_EVENTS,
        "sqs:sendMessage" => SEND_MESSAGE,
        "sns:publish" => PUBLISH,
        "dynamodb:getItem" | "dynamodb:putItem" | "dynamodb:updateItem" | "dynamodb:deleteItem" => {
            DYNAMODB_ITEM
        }
        _ => return None,
    })
}

/// Checks a mocked `result` of a Task calling `resource`; the problem in AWS's wording.
pub fn check(resource: &str, result: &Value, mode: FieldValidation) -> Result<(), String> {
    let Some(fields) = shape_of(resource) else {
        return Ok(());
    };
    if mode == FieldValidation::None {
        return Ok(());
    }
    let Some(obj) = result.as_object() else {
        return Err(problem("the mocked result must be a JSON object"));
    };
    check_object(fields, obj, mode)
}

fn problem(what: &str) -> String {
    format!("Mock result schema validation error: {what}")
}

fn check_object(
    fields: &[Field],
    obj: &serde_json::Map<String, Value>,
    mode: FieldValidation,
) -> Result<(), String> {
    for f in fields {
        match obj.get(f.name) {
            Some(v) => check_value(f.name, &f.shape, v, mode)?,
            None if f.required && mode == FieldValidation::Strict => {
                return Err(problem(&format!("Required field '{}' is missing", f.name)))
            }
            None => {}
        }
    }
    Ok(())
}

// The shapes are a few levels deep at most, so the recursion is bounded by the table,
// not by the mocked value.
fn check_value(name: &str, shape: &Shape, v: &Value, mode: FieldValidation) -> Result<(), String> {
    let wrong = |kind: &str| Err(problem(&format!("Field '{name}' must be {kind}")));
    match (shape, v) {
        (Shape::Any, _) | (Shape::String, Value::String(_)) | (Shape::Number, Value::Number(_)) => {
            Ok(())
        }
        (Shape::String, _) => wrong("a string"),
        (Shape::Number, _) => wrong("a number"),
        (Shape::List(item), Value::Array(items)) => items
            .iter()
            .try_for_each(|i| check_value(name, item, i, mode)),
        (Shape::List(_), _) => wrong("an array"),
        (Shape::Object(fields), Value::Object(o)) => check_object(fields, o, mode),
        (Shape::Object(_), _) => wrong("an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LAMBDA: &str = "arn:aws:states:::lambda:invoke";

    #[test]
    fn a_present_field_of_the_wrong_type_is_named_in_awss_words() {
        let bad = json!({"StatusCode": "200", "Payload": {"any": "thing"}});
        for mode in [FieldValidation::Strict, FieldValidation::Present] {
            assert_eq!(
                check(LAMBDA, &bad, mode).unwrap_err(),
                "Mock result schema validation error: Field 'StatusCode' must be a number"
            );
        }
        assert_eq!(check(LAMBDA, &bad, FieldValidation::None), Ok(()));
        let nested = json!({"Entries": [{"EventId": "a"}, {"EventId": ["b"]}]});
        assert_eq!(
            check(
                "arn:aws:states:::events:putEvents",
                &nested,
                FieldValidation::Present
            )
            .unwrap_err(),
            "Mock result schema validation error: Field 'EventId' must be a string"
        );
    }

    #[test]
    fn only_strict_asks_for_required_fields_and_unknown_fields_pass() {
        let sfn = "arn:aws:states:::states:startExecution";
        let partial = json!({"executionArn": "x", "StartDate": "2025-01-01T00:00:00Z"});
        assert_eq!(
            check(sfn, &partial, FieldValidation::Strict).unwrap_err(),
            "Mock result schema validation error: Required field 'ExecutionArn' is missing"
        );
        assert_eq!(check(sfn, &partial, FieldValidation::Present), Ok(()));
        let extra = json!({"random": "json"});
        assert_eq!(check(LAMBDA, &extra, FieldValidation::Strict), Ok(()));
        // An integration the table does not know is not checked.
        assert_eq!(
            check(
                "arn:aws:states:::aws-sdk:s3:getObject",
                &json!(1),
                FieldValidation::Strict
            ),
            Ok(())
        );
        assert!(check(LAMBDA, &json!([1]), FieldValidation::Strict).is_err());
    }
}
