//! `stepstream run`: the pipeline, on configured brokers or an embedded one, with an optional demo feeder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::load;
use crate::pipeline::{self, embedded, embedded::EmbeddedBroker};

/// Options of `stepstream run` beyond the config file.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    /// Config file; `config/stepstream.toml` when present, else built-in defaults.
    pub config: Option<PathBuf>,
    /// Feed this many demo requests, report, and stop.
    pub demo: Option<u64>,
    /// Demo requests per second (flat out when absent).
    pub demo_rate: Option<f64>,
    /// State machine the demo runs.
    pub demo_machine: String,
    /// Input file of each demo execution.
    pub demo_input: PathBuf,
    /// Copy requests to the results topic without running them (a throughput ceiling).
    pub passthrough: bool,
}

/// Runs until SIGINT/SIGTERM (or until the demo is done).
pub fn run(args: &RunArgs) -> Result<()> {
    let default = Path::new("config/stepstream.toml");
    let path = args
        .config
        .clone()
        .or_else(|| default.exists().then(|| default.to_path_buf()));
    let mut cfg = Config::load(path.as_deref())?;
    super::init_logs(&cfg.log).map_err(anyhow::Error::msg)?;
    // Before the machines load: their metric handles bind to the recorder there is then.
    if let Some(addr) = crate::metrics::install(&cfg.metrics.listen)? {
        tracing::info!("stepstream: serving metrics on http://{addr}/metrics");
    }
    let mode = if args.passthrough {
        pipeline::Mode::Passthrough
    } else {
        pipeline::Mode::Execute
    };
    let stop = super::stop_on_signals().context("cannot install signal handlers")?;

    // Kept alive until the pipeline has stopped.
    let mut embedded = None;
    let brokers = if cfg.kafka.brokers.trim().is_empty() {
        let mut topics: Vec<(&str, i32)> = cfg
            .inputs
            .iter()
            .map(|i| (i.topic.as_str(), cfg.kafka.partitions))
            .collect();
        topics.push((&cfg.topics.results, cfg.kafka.partitions));
        topics.push((&cfg.topics.errors, cfg.kafka.partitions));
        let definitions = cfg.state_machines_topic();
        topics.push((&definitions, 1));
        if !cfg.metrics.topic.is_empty() {
            topics.push((&cfg.metrics.topic, 1));
        }
        if cfg.logs.any_on() {
            topics.push((&cfg.logs.topic, cfg.kafka.partitions));
        }
        let broker = EmbeddedBroker::start(&topics).context("cannot start the embedded broker")?;
        let b = broker.bootstrap_servers().to_string();
        tracing::warn!(
            "stepstream: no brokers configured: started an embedded in-process broker at {b}.\n\
             stepstream: it is for demos only (it keeps at most 5 MiB per partition); set kafka.brokers for real use."
        );
        embedded = Some(broker);
        cfg.kafka.use_embedded_consumer_settings();
        b
    } else {
        cfg.kafka.brokers.clone()
    };

    let Some(count) = args.demo else {
        let piped = pipeline::run_with_service(
            &cfg,
            &brokers,
            &stop,
            mode,
            Arc::new(AtomicBool::new(false)),
            Some(crate::api::service()),
        );
        if let Some(broker) = &embedded {
            report_losses(broker);
        }
        return piped.map_err(Into::into);
    };

    let input_text = std::fs::read_to_string(&args.demo_input)
        .with_context(|| format!("cannot read the demo input {}", args.demo_input.display()))?;
    let input = serde_json::from_str(&input_text).with_context(|| {
        format!(
            "the demo input {} is not valid JSON",
            args.demo_input.display()
        )
    })?;
    let Some(requests) = cfg.inputs.iter().find(|i| i.state_machine.is_none()) else {
        bail!("the demo needs an envelope input topic (an [[inputs]] entry without state_machine)");
    };
    let spec = load::FeedSpec {
        bootstrap: brokers.clone(),
        requests_topic: requests.topic.clone(),
        results_topic: cfg.topics.results.clone(),
        state_machine: args.demo_machine.clone(),
        input,
        count,
        warmup: 0,
        rate_per_sec: args.demo_rate,
        max_outstanding: 2_000,
        timeout: Duration::from_secs(60),
        client_properties: cfg.kafka.property_pairs(),
        expected_output: None,
        passthrough: false,
        requests_dropped: embedded
            .as_ref()
            .map(EmbeddedBroker::dropped_unread_counter),
    };
    // Fail before feeding anything if a definition is broken.
    crate::machines::load(&cfg.engine.state_machines_dir)?;
    let pipeline_stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (cfg, brokers, pstop) = (cfg.clone(), brokers.clone(), Arc::clone(&pipeline_stop));
        std::thread::Builder::new()
            .name("pipeline".into())
            .spawn(move || {
                pipeline::run_with_service(
                    &cfg,
                    &brokers,
                    &pstop,
                    mode,
                    Arc::new(AtomicBool::new(false)),
                    Some(crate::api::service()),
                )
            })?
    };
    let summary = load::feed(&spec, &stop);
    pipeline_stop.store(true, Ordering::Relaxed);
    let piped = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the pipeline thread panicked"))?;
    let mut summary = summary?;
    if let Some(broker) = &embedded {
        summary.lost_requests = Some(report_losses(broker).dropped_unread);
    }
    println!("{}", summary.report());
    piped?;
    if summary.missing > 0 {
        let lost = summary.lost_requests.unwrap_or(0) + summary.lost_results;
        if lost > 0 {
            bail!(
                "{} demo requests got no result; the broker dropped {lost} requests or results \
                 before they were read",
                summary.missing
            );
        }
        bail!("{} demo requests got no result", summary.missing);
    }
    Ok(())
}

/// The embedded broker's part of the shutdown summary: what it dropped before the pipeline
/// read it, and what is still unread and goes with it.
fn report_losses(broker: &EmbeddedBroker) -> embedded::Settled {
    let settled = broker.settle();
    tracing::info!(
        "stepstream: the embedded broker dropped {} unread requests in all",
        settled.dropped_unread
    );
    if settled.unread > 0 {
        tracing::warn!(
            "stepstream: {} requests were still unread at the stop; they go with the embedded broker",
            settled.unread
        );
    }
    settled
}
