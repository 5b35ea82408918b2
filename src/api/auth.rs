//! SigV4 checks of API requests against the access keys of `[api] access_keys`.
//!
//! With no keys configured every request is accepted, signed or not (the AWS CLI and the
//! SDKs always sign, with whatever credentials they find). With keys, a request needs an
//! `Authorization: AWS4-HMAC-SHA256 ...` header by one of them whose signature matches the
//! request, signed within 15 minutes of now.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use sha2::{Digest, Sha256};

use super::errors::ApiError;

/// How far a request's `X-Amz-Date` may be from now.
const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// Checks the request's signature; `Ok` when no keys are configured.
pub fn check(
    keys: &BTreeMap<String, String>,
    method: &str,
    uri: &hyper::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    if keys.is_empty() {
        return Ok(());
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let auth = header("authorization").ok_or_else(|| {
        ApiError::unrecognized_client("Missing Authentication Token: the request is not signed")
    })?;
    let parts = parse(auth).ok_or_else(|| {
        ApiError::invalid_signature(
            "the Authorization header is not AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...",
        )
    })?;
    let secret = keys.get(parts.key_id).ok_or_else(|| {
        ApiError::unrecognized_client("The security token included in the request is invalid.")
    })?;
    let amz_date = header("x-amz-date")
        .ok_or_else(|| ApiError::invalid_signature("the request has no X-Amz-Date header"))?;
    let signed_at = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| ApiError::invalid_signature("X-Amz-Date is not YYYYMMDDTHHMMSSZ"))?
        .and_utc();
    let skew = (chrono::Utc::now() - signed_at).num_seconds().abs();
    if skew > MAX_SKEW_SECONDS {
        return Err(ApiError::invalid_signature(format!(
            "Signature expired: {amz_date} is more than 15 minutes from now"
        )));
    }
    let mut canonical = format!("{method}\n{}\n", canonical_path(uri.path()));
    canonical.push_str(&canonical_query(uri.query().unwrap_or("")));
    canonical.push('\n');
    for name in parts.signed_headers.split(';') {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let joined = values
            .iter()
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(",");
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&joined);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(parts.signed_headers);
    canonical.push('\n');
    match header("x-amz-content-sha256") {
        Some(h) => canonical.push_str(h),
        None => canonical.push_str(&hex(&Sha256::digest(body))),
    }
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
        parts.scope,
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in parts.scope.split('/') {
        key = hmac(&key, part.as_bytes());
    }
    let expected = hex(&hmac(&key, to_sign.as_bytes()));
    if !same(expected.as_bytes(), parts.signature.as_bytes()) {
        return Err(ApiError::invalid_signature(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.",
        ));
    }
    Ok(())
}

struct Parts<'a> {
    key_id: &'a str,
    /// `date/region/service/aws4_request`.
    scope: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse(auth: &str) -> Option<Parts<'_>> {
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for field in rest.split(',') {
        let (k, v) = field.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let (key_id, scope) = credential?.split_once('/')?;
    if scope.split('/').count() != 4 || !scope.ends_with("/aws4_request") {
        return None;
    }
    Some(Parts {
        key_id,
        scope,
        signed_headers: signed_headers?,
        signature: signature?,
    })
}

fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    // Each segment is encoded again, as botocore does for services other than S3.
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(k), encode(v))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Lowercase hex of a digest or a MAC, written as `States.Hash` writes its digests (a
/// `format!` per byte before).
fn hex(bytes: &[u8]) -> String {
    crate::expr::intrinsic::hex(bytes).as_str().to_owned()
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented SigV4 example (IAM ListUsers, "Signature Version 4 signing process").
    #[test]
    fn accepts_aws_documented_example_signature_and_refuses_a_changed_body() {
        let keys = BTreeMap::from([(
            "AKIDEXAMPLE".to_string(),
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string(),
        )]);
        let uri: hyper::Uri = "/?Action=ListUsers&Version=2010-05-08".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        headers.insert("host", "iam.amazonaws.com".parse().unwrap());
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        headers.insert("x-amz-date", now.parse().unwrap());
        // Sign with the same code path's primitives, then check.
        let scope = format!("{}/us-east-1/iam/aws4_request", &now[..8]);
        let canonical = format!(
            "GET\n/\nAction=ListUsers&Version=2010-05-08\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:{now}\n\ncontent-type;host;x-amz-date\n{}",
            hex(&Sha256::digest(b""))
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{now}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut key = b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec();
        for part in scope.split('/') {
            key = hmac(&key, part.as_bytes());
        }
        let sig = hex(&hmac(&key, to_sign.as_bytes()));
        headers.insert(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, SignedHeaders=content-type;host;x-amz-date, Signature={sig}")
                .parse()
                .unwrap(),
        );
        assert_eq!(check(&keys, "GET", &uri, &headers, b""), Ok(()));
        let wrong = check(&keys, "GET", &uri, &headers, b"x").unwrap_err();
        assert_eq!(wrong.kind, "InvalidSignatureException");
        let unknown = BTreeMap::from([("OTHER".to_string(), "s".to_string())]);
        assert_eq!(
            check(&unknown, "GET", &uri, &headers, b"")
                .unwrap_err()
                .kind,
            "UnrecognizedClientException"
        );
        // The documented key derivation (AWS's "Examples of how to derive a signing key").
        let mut k = b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec();
        for part in ["20120215", "us-east-1", "iam", "aws4_request"] {
            k = hmac(&k, part.as_bytes());
        }
        assert_eq!(
            hex(&k),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }
}
