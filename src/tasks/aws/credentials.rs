//! AWS credentials from the environment, the shared files or a web identity token, read
//! at call time so a rotated key is picked up (web identity ones are kept until shortly
//! before they expire). Every signed call (Lambda, the service integrations) uses them.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;

use crate::tasks::net::{self, TasksConfig};

/// Credentials from `AssumeRoleWithWebIdentity`, with their expiry.
static WEB_IDENTITY: Mutex<Option<(Credentials, SystemTime)>> = Mutex::new(None);

/// Web identity credentials are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// The credentials for a signed call: env vars and shared files first (see
/// [`static_sources`]), else a web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` and
/// `AWS_ROLE_ARN` exchanged at STS (`AWS_ENDPOINT_URL_STS`, else
/// `https://sts.REGION.amazonaws.com`, which `allow_hosts` must admit).
pub async fn load(cfg: &TasksConfig, region: &str) -> Result<Credentials, String> {
    let static_err = match static_sources() {
        Ok(c) => return Ok(c),
        Err(e) => e,
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(token_file), Some(role)) = (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN"))
    else {
        return Err(static_err);
    };
    {
        let cached = WEB_IDENTITY.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, until)) = cached.as_ref() {
            if SystemTime::now() + RENEW_BEFORE < *until {
                return Ok(c.clone());
            }
        }
    }
    let token = std::fs::read_to_string(&token_file)
        .map_err(|e| format!("cannot read AWS_WEB_IDENTITY_TOKEN_FILE {token_file}: {e}"))?;
    let endpoint =
        env("AWS_ENDPOINT_URL_STS").unwrap_or(format!("https://sts.{region}.amazonaws.com/"));
    let url =
        reqwest::Url::parse(&endpoint).map_err(|e| format!("STS endpoint {endpoint:?}: {e}"))?;
    if !cfg.allows(&url) {
        return Err(format!(
            "the web identity needs STS at {:?}: add it to [tasks] allow_hosts",
            url.host_str().unwrap_or_default()
        ));
    }
    let session = env("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "stepstream".into());
    let form = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role.as_str()),
        ("RoleSessionName", session.as_str()),
        ("WebIdentityToken", token.trim()),
    ];
    let body = {
        let mut u = reqwest::Url::parse("http://x/").expect("a constant URL parses");
        u.query_pairs_mut().extend_pairs(form);
        u.query().unwrap_or_default().to_string()
    };
    let req = net::client()
        .map_err(|e| e.cause.unwrap_or_default())?
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    let resp = net::send(req, cfg.call_timeout()).await.map_err(|e| {
        let e = e.into_workflow("STS", "AssumeRoleWithWebIdentity", cfg.call_timeout());
        e.cause.unwrap_or_default()
    })?;
    let text = String::from_utf8_lossy(&resp.body);
    if !resp.status.is_success() {
        let why = tag(&text, "Message").unwrap_or("no message");
        return Err(format!(
            "AssumeRoleWithWebIdentity for {role} failed ({}): {why}",
            resp.status.as_u16()
        ));
    }
    let (Some(id), Some(secret), Some(session_token)) = (
        tag(&text, "AccessKeyId"),
        tag(&text, "SecretAccessKey"),
        tag(&text, "SessionToken"),
    ) else {
        return Err("AssumeRoleWithWebIdentity answered without credentials".into());
    };
    let until = tag(&text, "Expiration")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| u64::try_from(t.timestamp()).ok())
        .map_or(SystemTime::now(), |s| {
            SystemTime::UNIX_EPOCH + Duration::from_secs(s)
        });
    let creds = Credentials::new(
        id,
        secret,
        Some(session_token.to_string()),
        Some(until),
        "web identity",
    );
    *WEB_IDENTITY.lock().unwrap_or_else(|p| p.into_inner()) = Some((creds.clone(), until));
    Ok(creds)
}

/// The text of the first `<name>...</name>` element (STS answers flat, unescaped values).
pub fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let len = xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..start + len].trim())
}

/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN`), else the
/// profile `AWS_PROFILE` (or `default`) of `AWS_SHARED_CREDENTIALS_FILE`
/// (`~/.aws/credentials`), then `AWS_CONFIG_FILE` (`~/.aws/config`).
pub fn static_sources() -> Result<Credentials, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Credentials::new(
            id,
            secret,
            env("AWS_SESSION_TOKEN"),
            None,
            "environment",
        ));
    }
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let home = env("HOME").unwrap_or_default();
    let files = [
        (
            env("AWS_SHARED_CREDENTIALS_FILE").unwrap_or(format!("{home}/.aws/credentials")),
            profile.clone(),
        ),
        (
            env("AWS_CONFIG_FILE").unwrap_or(format!("{home}/.aws/config")),
            if profile == "default" {
                profile.clone()
            } else {
                format!("profile {profile}")
            },
        ),
    ];
    for (file, section) in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let keys = section_of(&text, &section);
        let get = |k: &str| {
            keys.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        };
        if let (Some(id), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key")) {
            return Ok(Credentials::new(
                id,
                secret,
                get("aws_session_token"),
                None,
                "profile",
            ));
        }
    }
    Err(format!(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile {profile:?} in the shared credentials file"
    ))
}

/// The `key = value` lines of one `[section]` of an INI-style AWS file.
pub fn section_of(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_answers_are_read_by_tag() {
        let xml = "<R><Credentials><AccessKeyId>AK</AccessKeyId><SessionToken> t </SessionToken></Credentials></R>";
        assert_eq!(tag(xml, "AccessKeyId"), Some("AK"));
        assert_eq!(tag(xml, "SessionToken"), Some("t"));
        assert_eq!(tag(xml, "Expiration"), None);
    }

    #[test]
    fn profile_sections_are_read_by_name() {
        let text = "[default]\naws_access_key_id = A\n[profile x]\nAWS_ACCESS_KEY_ID=B\n";
        assert_eq!(
            section_of(text, "profile x"),
            vec![("aws_access_key_id".into(), "B".into())]
        );
        assert_eq!(section_of(text, "default").len(), 1);
    }
}
