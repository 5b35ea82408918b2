//! The AWS Query protocol, for SNS `Publish`: a form-encoded POST answered in XML.

use crate::value::{Map, Value};

use super::errors::{excerpt, Style};
use crate::error::{names, WorkflowError};

/// Deepest XML nesting read (SNS answers are 3 to 4 levels deep).
const MAX_XML_DEPTH: usize = 32;

fn bad(why: impl Into<String>) -> WorkflowError {
    WorkflowError::new(names::TASK_FAILED, why)
}

/// A parameter's text: strings as they are, other JSON values as JSON text (AWS sends a
/// `Message` object serialized, as `States.JsonToString` would).
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// The form of an SNS `Publish` from `sns:publish`'s arguments.
pub fn publish_form(input: &Value) -> Result<Vec<(String, String)>, WorkflowError> {
    let args = input
        .as_object()
        .ok_or_else(|| bad("sns:publish takes an object of arguments"))?;
    let mut form = vec![
        ("Action".to_string(), "Publish".to_string()),
        ("Version".to_string(), "2010-03-31".to_string()),
    ];
    if !args.contains_key("Message") {
        return Err(bad("sns:publish needs a Message"));
    }
    for (k, v) in args {
        match k.as_str() {
            "Message" => form.push((k.to_string(), text_of(v))),
            "TopicArn"
            | "TargetArn"
            | "PhoneNumber"
            | "Subject"
            | "MessageStructure"
            | "MessageDeduplicationId"
            | "MessageGroupId" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| bad(format!("sns:publish: {k} must be a string")))?;
                form.push((k.to_string(), s.to_string()));
            }
            "MessageAttributes" => attributes(v, &mut form)?,
            other => {
                return Err(bad(format!(
                    "sns:publish does not take {other:?} (it takes Message, TopicArn, TargetArn, \
                     PhoneNumber, Subject, MessageStructure, MessageAttributes, \
                     MessageDeduplicationId, MessageGroupId)"
                )))
            }
        }
    }
    Ok(form)
}

/// `MessageAttributes.entry.N.Name` / `.Value.DataType` / `.Value.StringValue|BinaryValue`.
fn attributes(v: &Value, form: &mut Vec<(String, String)>) -> Result<(), WorkflowError> {
    let attrs = v
        .as_object()
        .ok_or_else(|| bad("sns:publish: MessageAttributes must be an object"))?;
    for (i, (name, attr)) in attrs.iter().enumerate() {
        let prefix = format!("MessageAttributes.entry.{}", i + 1);
        form.push((format!("{prefix}.Name"), name.to_string()));
        let attr = attr.as_object().ok_or_else(|| {
            bad(format!(
                "sns:publish: MessageAttributes.{name} must be an object with DataType"
            ))
        })?;
        for (k, v) in attr {
            if !matches!(k.as_str(), "DataType" | "StringValue" | "BinaryValue") {
                return Err(bad(format!(
                    "sns:publish: MessageAttributes.{name} does not take {k:?} (DataType, StringValue, BinaryValue)"
                )));
            }
            form.push((format!("{prefix}.Value.{k}"), text_of(v)));
        }
    }
    Ok(())
}

/// The text of every leaf element, keyed by its path of local names
/// (`PublishResponse/PublishResult/MessageId`), entities resolved.
pub fn leaves(xml: &[u8]) -> Result<Vec<(String, String)>, String> {
    use quick_xml::events::Event;
    // Not `trim_text`: it trims each piece around an entity (`a &amp; b` would lose its spaces).
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut out = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        match event {
            Event::Start(e) => {
                if path.len() >= MAX_XML_DEPTH {
                    return Err("the XML is nested too deeply".into());
                }
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.decode().map_err(|e| e.to_string())?),
            Event::CData(t) => text.push_str(&t.decode().map_err(|e| e.to_string())?),
            Event::GeneralRef(r) => {
                if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
                    text.push(c);
                } else {
                    let name = r.decode().map_err(|e| e.to_string())?;
                    let s = quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| format!("unknown entity &{name};"))?;
                    text.push_str(s);
                }
            }
            Event::End(_) => {
                let t = text.trim();
                if !t.is_empty() {
                    out.push((path.join("/"), t.to_string()));
                }
                text.clear();
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// The text of the first leaf whose path ends with `suffix`.
pub fn find<'a>(leaves: &'a [(String, String)], suffix: &str) -> Option<&'a str> {
    leaves
        .iter()
        .find(|(p, _)| p == suffix || p.ends_with(&format!("/{suffix}")))
        .map(|(_, t)| t.as_str())
}

/// `Publish`'s answer as Step Functions returns it (before the HTTP metadata).
pub fn publish_result(body: &[u8]) -> Result<Map, WorkflowError> {
    let leaves = leaves(body).map_err(|e| {
        bad(format!(
            "SNS answered with unreadable XML ({e}): {}",
            excerpt(body)
        ))
    })?;
    let mut out = Map::new();
    let id = find(&leaves, "PublishResult/MessageId").ok_or_else(|| {
        bad(format!(
            "SNS answered without a MessageId: {}",
            excerpt(body)
        ))
    })?;
    out.insert("MessageId".into(), Value::from(id.to_string()));
    if let Some(seq) = find(&leaves, "PublishResult/SequenceNumber") {
        out.insert("SequenceNumber".into(), Value::from(seq.to_string()));
    }
    Ok(out)
}

/// The error for a refused Query call (`<Error><Code>` and `<Message>`).
pub fn query_error(
    style: &Style,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> WorkflowError {
    let leaves = leaves(body).unwrap_or_default();
    let code = find(&leaves, "Error/Code");
    let message = find(&leaves, "Error/Message")
        .map(str::to_string)
        .unwrap_or_else(|| excerpt(body));
    style.error(status, headers, code, None, Some(&message))
}

#[cfg(test)]
mod tests {
    use crate::json;

    use super::*;

    #[test]
    fn publish_arguments_become_the_query_form() {
        let form = publish_form(&json!({
            "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": {"order": 1},
            "Subject": "s",
            "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "new"},
                                   "n": {"DataType": "Number", "StringValue": "3"}}
        }))
        .unwrap();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Action"), Some("Publish"));
        assert_eq!(get("Message"), Some(r#"{"order":1}"#));
        assert_eq!(get("MessageAttributes.entry.1.Name"), Some("kind"));
        assert_eq!(
            get("MessageAttributes.entry.1.Value.StringValue"),
            Some("new")
        );
        assert_eq!(
            get("MessageAttributes.entry.2.Value.DataType"),
            Some("Number")
        );
        assert!(publish_form(&json!({"TopicArn": "t"})).is_err());
        let e = publish_form(&json!({"Message": "m", "Nope": 1})).unwrap_err();
        assert!(e.cause.unwrap().contains("\"Nope\""));
    }

    #[test]
    fn publish_answers_and_errors_are_read_from_the_xml() {
        let ok = br#"<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>"#;
        assert_eq!(
            Value::Object(publish_result(ok).unwrap()),
            json!({"MessageId": "m-1"})
        );
        let err = br#"<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic &amp; &#x41; does not exist</Message></Error><RequestId>R</RequestId></ErrorResponse>"#;
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-amzn-requestid", "R".parse().unwrap());
        let e = query_error(
            &Style::v1("SNS", "AmazonSNSException", "AmazonSNS"),
            404,
            &h,
            err,
        );
        assert_eq!(e.error.as_deref(), Some("SNS.NotFoundException"));
        assert_eq!(
            e.cause.as_deref(),
            Some("Topic & A does not exist (Service: AmazonSNS; Status Code: 404; Error Code: NotFound; Request ID: R; Proxy: null)")
        );
        assert!(publish_result(b"<a><b>").is_err());
        let deep = "<a>".repeat(100);
        assert!(leaves(deep.as_bytes()).is_err());
    }
}
