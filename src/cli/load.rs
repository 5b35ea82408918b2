//! `stepstream load`: drives a pipeline with one benchmark workload and measures it.
//!
//! By default the pipeline runs in this process, on fresh topics of the configured brokers
//! (or of an embedded broker when none are configured), with the workload's state machine
//! and task handlers deployed; `--external` feeds an already running pipeline instead.
//! `--passthrough` measures a plain consume->produce copy through the same code and
//! broker; `--compare` runs both, one after the other, and prints the ratio (target P4).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::config::{Config, InputConfig};
use crate::load;
use crate::pipeline::{self, embedded::EmbeddedBroker, Mode};

/// Options of `stepstream load`, declared once for the command line and for callers.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Workload file (benches/workloads/*.json format).
    #[arg(long, default_value = "benches/workloads/order.json")]
    pub workload: PathBuf,
    /// Requests to send.
    #[arg(long, default_value_t = 50_000)]
    pub count: u64,
    /// Requests per second (default: flat out).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Requests sent first and left out of the figures (reported apart), so a short run
    /// measures the running pipeline, not its start-up [default: one second's worth at
    /// --rate, else 10000, at most --count; 0 for none].
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Config file for brokers and client properties (default: built-in defaults + environment).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Measure a plain consume->produce copy instead of executions.
    #[arg(long)]
    pub passthrough: bool,
    /// Measure the copy, then executions, in the same run, and print the ratio (P4).
    #[arg(long)]
    pub compare: bool,
    /// With --compare: measure the copy and executions this many times, alternating,
    /// and print every round's ratio and their median (one pair moves ±2x on a shared VM).
    #[arg(long, default_value_t = 1, requires = "compare", value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Feed the pipeline the config describes instead of starting one in this process.
    #[arg(long)]
    pub external: bool,
    /// At most this many requests waiting for their result.
    #[arg(long, default_value_t = 5_000)]
    pub max_outstanding: usize,
}

/// Warm-up requests of a flat-out run when none is asked for: about the first tenth of a
/// second, which holds the group join and the first fetches.
const DEFAULT_WARMUP: u64 = 10_000;

struct Workload {
    name: String,
    definition: Value,
    tasks: Value,
    input: Value,
    expected: Value,
}

fn read_workload(path: &PathBuf) -> Result<Workload> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read workload {}", path.display()))?;
    let w: Value = serde_json::from_str(&text)
        .with_context(|| format!("workload {} is not JSON", path.display()))?;
    let field = |k: &str| {
        w.get(k)
            .cloned()
            .with_context(|| format!("workload {} has no {k:?}", path.display()))
    };
    Ok(Workload {
        name: w["name"].as_str().unwrap_or("workload").to_string(),
        definition: field("definition")?,
        tasks: w
            .get("tasks")
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default())),
        input: field("input")?,
        expected: field("expected_output")?,
    })
}

/// Runs the load and prints the report(s); fails when results are missing or wrong.
pub fn run(args: &LoadArgs) -> Result<()> {
    let w = read_workload(&args.workload)?;
    let mut cfg = Config::load(args.config.as_deref())?;
    super::init_logs(&cfg.log).map_err(anyhow::Error::msg)?;
    let stop = super::stop_on_signals().context("cannot install signal handlers")?;
    if args.external {
        let requests = cfg
            .inputs
            .iter()
            .find(|i| i.state_machine.is_none())
            .context("the config has no envelope input topic to feed")?
            .topic
            .clone();
        let summary = feed(
            args,
            &cfg,
            &cfg.kafka.brokers,
            &requests,
            &w,
            Mode::Execute,
            &stop,
        )?;
        return check(&summary);
    }

    // Fresh names per run: earlier runs' records and commits cannot interfere.
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let dir = std::env::temp_dir().join(format!("stepstream-load-{run_id}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join(format!("{}.asl.json", w.name)),
        w.definition.to_string(),
    )?;
    std::fs::write(
        dir.join(format!("{}.tasks.json", w.name)),
        w.tasks.to_string(),
    )?;
    cfg.engine.state_machines_dir = dir.clone();
    cfg.kafka.create_topics = true;

    let phases: Vec<Mode> = match (args.compare, args.passthrough) {
        (true, _) => (0..args.rounds)
            .flat_map(|_| [Mode::Passthrough, Mode::Execute])
            .collect(),
        (false, true) => vec![Mode::Passthrough],
        (false, false) => vec![Mode::Execute],
    };
    let mut topics = Vec::new();
    let mut phase_cfgs = Vec::new();
    for (i, mode) in phases.iter().enumerate() {
        let tag = if *mode == Mode::Passthrough {
            "passthrough"
        } else {
            "execute"
        };
        let mut c = cfg.clone();
        // Each round on its own topics: no phase reads another's records or commits.
        let prefix = format!("stepstream-load-{run_id}-{tag}-{}", i / 2);
        c.inputs = vec![InputConfig {
            topic: format!("{prefix}.requests"),
            state_machine: None,
        }];
        c.topics.results = format!("{prefix}.results");
        c.topics.errors = format!("{prefix}.errors");
        c.kafka.group_id = prefix.clone();
        for t in [&c.inputs[0].topic, &c.topics.results, &c.topics.errors] {
            topics.push(t.clone());
        }
        // The embedded broker cannot create topics later: the definitions topic too.
        topics.push(c.state_machines_topic());
        phase_cfgs.push((*mode, c));
    }

    let mut _embedded = None;
    let brokers = if cfg.kafka.brokers.trim().is_empty() {
        let list: Vec<(&str, i32)> = topics
            .iter()
            .map(|t| (t.as_str(), cfg.kafka.partitions))
            .collect();
        let b = EmbeddedBroker::start(&list).context("cannot start the embedded broker")?;
        let addr = b.bootstrap_servers().to_string();
        eprintln!("stepstream load: no brokers configured: using an embedded broker at {addr}");
        _embedded = Some(b);
        for (_, c) in &mut phase_cfgs {
            c.kafka.use_embedded_consumer_settings();
        }
        addr
    } else {
        cfg.kafka.brokers.clone()
    };

    let mut results = Vec::new();
    for (mode, c) in &phase_cfgs {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let label = if *mode == Mode::Passthrough {
            "passthrough (consume -> produce, no execution)"
        } else {
            "executions"
        };
        eprintln!(
            "stepstream load: {label}: {} requests of workload {:?}",
            args.count, w.name
        );
        let pipeline_stop = Arc::new(AtomicBool::new(false));
        let assigned = Arc::new(AtomicBool::new(false));
        let worker = {
            let (c, b, s, m, a) = (
                c.clone(),
                brokers.clone(),
                Arc::clone(&pipeline_stop),
                *mode,
                Arc::clone(&assigned),
            );
            std::thread::Builder::new()
                .name("pipeline".into())
                .spawn(move || pipeline::run_with(&c, &b, &s, m, a))?
        };
        // Start-up (topic creation, group join) is not part of the measurement.
        let waited = std::time::Instant::now();
        while !assigned.load(Ordering::Relaxed)
            && !worker.is_finished()
            && waited.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let summary = feed(args, c, &brokers, &c.inputs[0].topic, &w, *mode, &stop);
        pipeline_stop.store(true, Ordering::Relaxed);
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("the pipeline thread panicked"))??;
        let summary = summary?;
        println!("== {label}\n{}", summary.report());
        results.push((*mode, summary));
    }
    let _ = std::fs::remove_dir_all(&dir);

    if args.compare {
        let mut ratios = Vec::new();
        for (round, pair) in results.chunks_exact(2).enumerate() {
            let [(_, pass), (_, exec)] = pair else {
                unreachable!("chunks of two")
            };
            let ratio = exec.throughput_per_sec / pass.throughput_per_sec.max(1.0);
            let which = if args.rounds > 1 {
                format!(" round {}", round + 1)
            } else {
                String::new()
            };
            println!(
                "== P4{which}: executions {:.0}/s vs passthrough {:.0}/s = {ratio:.2}x (target >= 0.8x)",
                exec.throughput_per_sec, pass.throughput_per_sec,
            );
            ratios.push(ratio);
        }
        if ratios.len() > 1 {
            println!(
                "== P4 median of {} rounds: {:.2}x (target >= 0.8x)",
                ratios.len(),
                median(&mut ratios)
            );
        }
    }
    for (_, s) in &results {
        check(s)?;
    }
    Ok(())
}

/// The middle value (the mean of the middle two for an even count); `xs` must not be empty.
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn feed(
    args: &LoadArgs,
    cfg: &Config,
    brokers: &str,
    requests_topic: &str,
    w: &Workload,
    mode: Mode,
    stop: &AtomicBool,
) -> Result<load::FeedSummary> {
    let spec = load::FeedSpec {
        bootstrap: brokers.to_string(),
        requests_topic: requests_topic.to_string(),
        results_topic: cfg.topics.results.clone(),
        state_machine: w.name.clone(),
        input: w.input.clone(),
        count: args.count,
        warmup: args.warmup.unwrap_or_else(|| {
            let warmup = match args.rate {
                Some(rate) => rate.ceil() as u64,
                None => DEFAULT_WARMUP,
            };
            // A short run is not made ten times longer by its warm-up.
            warmup.min(args.count)
        }),
        rate_per_sec: args.rate,
        max_outstanding: args.max_outstanding,
        timeout: Duration::from_secs(60),
        client_properties: cfg.kafka.property_pairs(),
        passthrough: mode == Mode::Passthrough,
        expected_output: (mode == Mode::Execute).then(|| w.expected.clone()),
        requests_dropped: None,
    };
    Ok(load::feed(&spec, stop)?)
}

fn check(s: &load::FeedSummary) -> Result<()> {
    if s.missing > 0 {
        bail!("{} requests got no result", s.missing);
    }
    if s.wrong_outputs > 0 {
        bail!("{} results had the wrong output", s.wrong_outputs);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    #[test]
    fn the_median_is_the_middle_round_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [0.9, 0.3, 0.6]), 0.6);
        assert_eq!(median(&mut [0.8, 0.4, 0.5, 0.9]), 0.65);
        assert_eq!(median(&mut [0.7]), 0.7);
    }

    #[test]
    fn rounds_belong_to_compare_and_stay_within_twenty() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["load"], args].concat());
        assert_eq!(
            parse(&["--compare", "--rounds", "5"]).unwrap().load.rounds,
            5
        );
        assert_eq!(parse(&["--compare"]).unwrap().load.rounds, 1);
        assert!(
            parse(&["--rounds", "3"]).is_err(),
            "rounds without --compare"
        );
        assert!(parse(&["--compare", "--rounds", "0"]).is_err());
        assert!(parse(&["--compare", "--rounds", "21"]).is_err());
    }
}
