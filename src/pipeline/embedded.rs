//! TEMPORARY STUB (the real module is being written).
#[derive(Debug, thiserror::Error)]
#[error("embedded broker not available yet")]
pub struct EmbeddedError;
pub struct EmbeddedBroker;
impl EmbeddedBroker {
    pub fn start(_topics: &[(&str, i32)]) -> Result<EmbeddedBroker, EmbeddedError> {
        Err(EmbeddedError)
    }
    pub fn bootstrap_servers(&self) -> &str {
        ""
    }
}
