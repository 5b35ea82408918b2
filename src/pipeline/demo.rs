//! TEMPORARY STUB (the real module is being written).
use std::collections::BTreeMap;
use std::time::Duration;
pub struct DemoSpec {
    pub bootstrap: String,
    pub requests_topic: String,
    pub results_topic: String,
    pub state_machine: String,
    pub input: serde_json::Value,
    pub count: u64,
    pub rate_per_sec: Option<f64>,
    pub max_outstanding: usize,
    pub timeout: Duration,
    pub client_properties: Vec<(String, String)>,
}
pub struct DemoSummary {
    pub sent: u64,
    pub results: u64,
    pub by_status: BTreeMap<String, u64>,
    pub elapsed: Duration,
    pub throughput_per_sec: f64,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    pub latency_max: Duration,
    pub missing: u64,
}
impl DemoSummary {
    pub fn report(&self) -> String {
        String::new()
    }
}
#[derive(Debug, thiserror::Error)]
#[error("demo stub")]
pub struct DemoError;
pub fn run(
    _spec: &DemoSpec,
    _stop: &std::sync::atomic::AtomicBool,
) -> Result<DemoSummary, DemoError> {
    Err(DemoError)
}
