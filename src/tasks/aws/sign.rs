//! SigV4 signing of one request with the `aws-sigv4` crate (no signing by hand).

use std::time::SystemTime;

use aws_credential_types::Credentials;

use crate::error::{names, WorkflowError};

/// The headers to add so that `method url` with these headers and body is signed for
/// `service` (the signing name: `lambda`, `dynamodb`, `states`, ...) in `region`.
pub fn sign(
    creds: Credentials,
    method: &str,
    url: &reqwest::Url,
    headers: &[(&str, String)],
    body: &[u8],
    region: &str,
    service: &str,
) -> Result<Vec<(&'static str, String)>, WorkflowError> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let failed =
        |e: &dyn std::fmt::Display| WorkflowError::new(names::TASK_FAILED, format!("signing: {e}"));
    let identity = creds.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        headers.iter().map(|(k, v)| (*k, v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    let (signed, _) = instructions.into_parts();
    Ok(signed
        .into_iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_scoped_to_the_service_and_region() {
        let creds = Credentials::new("AKID", "secret", Some("tok".into()), None, "test");
        let url = reqwest::Url::parse("https://dynamodb.eu-west-1.amazonaws.com/").unwrap();
        let headers = [("x-amz-target", "DynamoDB_20120810.GetItem".to_string())];
        let signed = sign(
            creds,
            "POST",
            &url,
            &headers,
            b"{}",
            "eu-west-1",
            "dynamodb",
        )
        .unwrap();
        let auth = &signed
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .expect("an Authorization header")
            .1;
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-1/dynamodb/aws4_request"), "{auth}");
        assert!(
            auth.contains("x-amz-target"),
            "the target header is signed: {auth}"
        );
        assert!(signed
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("x-amz-security-token") && v == "tok"));
    }
}
