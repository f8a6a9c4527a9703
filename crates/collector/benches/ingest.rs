//! Ingest load generator: posts batches of realistic events (Tally-shaped, each with a unique
//! `event_id`) at an embedded collector over loopback and reports events/s and latency
//! percentiles per batch size. Also measures the store alone (no HTTP) for comparison.
//!
//! Flags: see [`USAGE`] (`-- --help` prints it).
//!
//! With `--clickhouse-url http://127.0.0.1:8123` the same runs go to a ClickHouse server (one fresh
//! database per run) instead of SQLite.
//!
//! Every run is bounded by `--events` per batch size and by `--seconds` (default 60) of wall time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tally_collector::config::{StoreKind, Synchronous};
use tally_collector::event::Receipt;
use tally_collector::fixtures::session;
use tally_collector::{open_store, start, CollectorConfig, IncomingEvent, IngestBatch};

const USAGE: &str = "\
usage: cargo bench -p tally-collector --bench ingest -- [flags]
  --batches 1,100,1000       batch sizes to run, in order
  --events 200000            events per batch size
  --seconds 60               wall-time bound per batch size
  --concurrency 4            senders posting at once
  --synchronous full|normal  SQLite's synchronous setting
  --store-only | --http-only run only the store path or only HTTP
  --ids tally|derived        a fresh event_id per event, or none (the collector derives one)
  --times live|fixed         sessions starting when each batch is made, or the same ones each time
  --account ID               the chatgpt-account-id of every batch (\"\" sends none)
  --page-size N              SQLite page size of the fresh database
  --clickhouse-url URL       run against ClickHouse instead of SQLite
";

struct Args {
    batches: Vec<usize>,
    events: usize,
    concurrency: usize,
    seconds: u64,
    synchronous: Synchronous,
    store_only: bool,
    http_only: bool,
    page_size: Option<u32>,
    clickhouse_url: Option<String>,
    ids: Ids,
    times: Times,
    /// The `chatgpt-account-id` every batch is sent with ("" sends none).
    account: String,
}

/// The flags, or None when help was asked for.
fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        batches: vec![1, 100, 1000],
        events: 200_000,
        concurrency: 4,
        seconds: 60,
        synchronous: Synchronous::Full,
        store_only: false,
        http_only: false,
        page_size: None,
        clickhouse_url: None,
        ids: Ids::Tally,
        times: Times::Live,
        // Codex and Tally signed in with ChatGPT send their account id; this one is shaped alike.
        account: "5c1b7f0e-3a2d-4e6b-9f14-8d0a2c6e4b71".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--bench" => {}
            "--batches" => {
                args.batches = value()?
                    .split(',')
                    .map(|s| s.parse().map_err(|_| format!("bad batch size {s}")))
                    .collect::<Result<_, _>>()?
            }
            "--events" => args.events = value()?.parse().map_err(|_| "bad --events")?,
            "--concurrency" => {
                args.concurrency = value()?.parse().map_err(|_| "bad --concurrency")?
            }
            "--seconds" => args.seconds = value()?.parse().map_err(|_| "bad --seconds")?,
            "--synchronous" => {
                args.synchronous = match value()?.as_str() {
                    "full" => Synchronous::Full,
                    "normal" => Synchronous::Normal,
                    other => return Err(format!("bad --synchronous {other}")),
                }
            }
            "--store-only" => args.store_only = true,
            "--http-only" => args.http_only = true,
            "--page-size" => {
                args.page_size = Some(value()?.parse().map_err(|_| "bad --page-size")?)
            }
            "--clickhouse-url" => args.clickhouse_url = Some(value()?),
            "--ids" => {
                args.ids = match value()?.as_str() {
                    "tally" => Ids::Tally,
                    "derived" => Ids::Derived,
                    other => return Err(format!("bad --ids {other} (tally or derived)")),
                }
            }
            "--times" => {
                args.times = match value()?.as_str() {
                    "live" => Times::Live,
                    "fixed" => Times::Fixed,
                    other => return Err(format!("bad --times {other} (live or fixed)")),
                }
            }
            "--account" => args.account = value()?,
            "--help" | "-h" => return Ok(None),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Some(args))
}

/// Makes the batch bodies: realistic events (three fixture sessions, cycled) with ids as asked
/// and times as asked.
struct EventSource {
    ids: Ids,
    times: Times,
    /// The sessions as last made, and the second they start at. With [`Times::Live`] they are
    /// made again when the clock has moved on a second (not per body: for batches of one event
    /// that would make the load generator the bottleneck).
    sessions: Mutex<(i64, Arc<Vec<String>>)>,
}

impl EventSource {
    fn new(ids: Ids, times: Times) -> Self {
        let start_s = now_ms() / 1000 - 3600;
        EventSource {
            ids,
            times,
            sessions: Mutex::new((start_s, Arc::new(event_tails(start_s)))),
        }
    }

    /// A batch body of `n` events, the first being event `first` of the run.
    fn body(&self, first: usize, n: usize) -> String {
        body(&self.sessions(), first, n, self.ids)
    }

    fn sessions(&self) -> Arc<Vec<String>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now_s = now_ms() / 1000;
        if self.times == Times::Live && sessions.0 != now_s {
            *sessions = (now_s, Arc::new(event_tails(now_s)));
        }
        sessions.1.clone()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The fixture's sessions, started at `start_s`: each event as JSON text with its fields in the
/// order senders write them (Tally and Codex: `event_type`, then `event_params`), without the
/// closing `}`, so an id can be appended cheaply.
fn event_tails(start_s: i64) -> Vec<String> {
    let mut tails = Vec::new();
    for (i, client) in ["vscode", "tui", "jetbrains"].iter().enumerate() {
        for event in session(client, i as u64, 5, start_s) {
            let params = &event["event_params"];
            assert!(
                params.as_object().is_some_and(|p| !p.is_empty()),
                "fixture events changed shape"
            );
            tails.push(format!(
                "{{\"event_type\":{},{PARAMS_OPEN}{}",
                event["event_type"],
                &params.to_string()[1..]
            ));
        }
    }
    tails
}

/// A batch body of `n` events. With `Ids::Tally` each carries a fresh UUIDv7 `event_id`, last
/// (as Tally sends); with `Ids::Derived` none does and each gets a distinct `seq` field, so the
/// collector derives a distinct hash id per event (as for a real Codex), and a `completed_at_ms`
/// of the moment the batch is made (real events are sent soon after they happen, so their times
/// advance).
fn body(tails: &[String], first: usize, n: usize, ids: Ids) -> String {
    let now_ms = now_ms();
    let mut out = String::with_capacity(n * 1100 + 16);
    out.push_str("{\"events\":[");
    for k in 0..n {
        if k > 0 {
            out.push(',');
        }
        let i = first + k;
        let tail = &tails[i % tails.len()];
        match ids {
            Ids::Tally => {
                out.push_str(tail);
                out.push_str(",\"event_id\":\"");
                out.push_str(&uuid::Uuid::now_v7().to_string());
                out.push_str("\"}");
            }
            Ids::Derived => {
                // The fields go first inside the params, and the fixture's own completed_at_ms
                // (if any) is renamed so ours counts.
                let open = tail
                    .find(PARAMS_OPEN)
                    .map_or(0, |at| at + PARAMS_OPEN.len());
                out.push_str(&tail[..open]);
                out.push_str(&format!("\"seq\":{i},\"completed_at_ms\":{now_ms},"));
                out.push_str(
                    &tail[open..].replace("\"completed_at_ms\":", "\"fixture_completed_at_ms\":"),
                );
                out.push('}');
            }
        }
    }
    out.push_str("]}");
    out
}

const PARAMS_OPEN: &str = "\"event_params\":{";

/// Which ids the generated events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ids {
    Tally,
    Derived,
}

/// How the events' own times move from batch to batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Times {
    /// Each batch holds sessions that start when it is made, as a live stream of events does:
    /// rows land at the end of the time indexes.
    Live,
    /// Every batch repeats the same sessions of an hour ago: rows land at the same few dozen
    /// places in the time indexes, batch after batch (the pessimistic case, and what the bench
    /// measured before `--times` existed).
    Fixed,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

fn print_row(mode: &str, batch: usize, events: usize, elapsed: Duration, mut lat: Vec<Duration>) {
    lat.sort_unstable();
    println!(
        "{mode:<6} batch {batch:>5}: {events:>8} events in {:>7.2} s = {:>9.0} events/s   \
         latency p50 {:>8.2} ms  p99 {:>8.2} ms",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64().max(1e-9),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
}

fn print_cpu(events: usize, cpu_seconds: f64, elapsed: Duration) {
    println!(
        "       collector CPU {cpu_seconds:.2} s ({:.2} cores busy) = {:.0} events per CPU-second",
        cpu_seconds / elapsed.as_secs_f64().max(1e-9),
        events as f64 / cpu_seconds.max(1e-9)
    );
}

/// CPU time of this process, and of the load generator's threads (named [`LOADGEN`]), from the
/// kernel's accounting: the collector's share is the difference.
struct CpuClock {
    process: f64,
    loadgen: f64,
}

const LOADGEN: &str = "loadgen";

impl CpuClock {
    fn start() -> Self {
        CpuClock {
            process: process_cpu_seconds(),
            loadgen: thread_cpu_seconds(LOADGEN),
        }
    }

    fn process_seconds(&self) -> f64 {
        process_cpu_seconds() - self.process
    }

    fn collector_seconds(&self) -> f64 {
        self.process_seconds() - (thread_cpu_seconds(LOADGEN) - self.loadgen)
    }
}

fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// User + system CPU seconds of this process's live threads whose name starts with `prefix`.
fn thread_cpu_seconds(prefix: &str) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut total = 0.0;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        total += (field(11) + field(12)) / ticks;
    }
    total
}

/// Collector config for one run: SQLite in `dir`, or a fresh ClickHouse database.
fn run_config(args: &Args, dir: &tempfile::TempDir, run: &str) -> CollectorConfig {
    let mut config = CollectorConfig::embedded(dir.path().join("bench.sqlite3"));
    config.sqlite.synchronous = args.synchronous;
    if let Some(page_size) = args.page_size {
        config.sqlite.page_size = page_size;
    }
    config.queue_capacity = 256;
    if let Some(url) = &args.clickhouse_url {
        config.store = StoreKind::Clickhouse;
        config.clickhouse.url = url.clone();
        config.clickhouse.database = format!("tally_bench_{}_{run}", std::process::id());
    }
    config
}

async fn run_http(
    args: &Args,
    batch: usize,
    source: Arc<EventSource>,
    loadgen: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = run_config(args, &dir, &format!("http{batch}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let handle = start(config, listener).await?;
    let url = format!("{}/codex/analytics-events/events", handle.base_url());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let batches_total = (args.events / batch).max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let cpu = CpuClock::start();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (http, url, next, source) = (http.clone(), url.clone(), next.clone(), source.clone());
        let account = args.account.clone();
        // The load generator runs on its own runtime, so its CPU time can be told apart.
        workers.push(loadgen.spawn(async move {
            let mut lat = Vec::new();
            let mut sent = 0usize;
            let mut failed = 0usize;
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches_total || Instant::now() > deadline {
                    break;
                }
                let text = source.body(b * batch, batch);
                let t = Instant::now();
                let mut request = http.post(&url).header("content-type", "application/json");
                if !account.is_empty() {
                    request = request.header("chatgpt-account-id", &account);
                }
                let response = request.body(text).send().await;
                match response {
                    Ok(r) if r.status() == 200 => {
                        lat.push(t.elapsed());
                        sent += batch;
                    }
                    _ => failed += 1,
                }
            }
            (lat, sent, failed)
        }));
    }
    let mut lat = Vec::new();
    let (mut sent, mut failed) = (0, 0);
    for w in workers {
        let (l, s, f) = w.await?;
        lat.extend(l);
        sent += s;
        failed += f;
    }
    let elapsed = started.elapsed();
    let collector_cpu = cpu.collector_seconds();
    print_row("http", batch, sent, elapsed, lat);
    print_cpu(sent, collector_cpu, elapsed);
    if failed > 0 {
        println!("       {failed} batches failed");
    }
    handle.shutdown().await?;
    Ok(())
}

async fn run_store(args: &Args, batch: usize, source: &EventSource) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = run_config(args, &dir, &format!("store{batch}"));
    let store = open_store(&config).await?;
    let batches_total = (args.events / batch).max(1);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let limits = config.decode_limits();
    let cpu = CpuClock::start();
    let started = Instant::now();
    let mut lat = Vec::new();
    let mut sent = 0;
    let mut decode_time = Duration::ZERO;
    let mut generating = Duration::ZERO;
    for b in 0..batches_total {
        if Instant::now() > deadline {
            break;
        }
        let g = Instant::now();
        let text = source.body(b * batch, batch);
        generating += g.elapsed();
        let t = Instant::now();
        // Decode as the endpoint does, so the number covers everything but HTTP.
        let text = tally_collector::decode::body_text(bytes::Bytes::from(text))?;
        let decoded = tally_collector::decode::decode_text(&text, &limits)?;
        anyhow::ensure!(
            decoded.rejects.is_empty(),
            "the collector refused generated events: {:?}",
            decoded.rejects.first()
        );
        let receipt = Receipt::new(&args.account, None, 0);
        let events: Vec<IncomingEvent> = decoded
            .events
            .into_iter()
            .map(|e| e.into_incoming(&receipt, &text))
            .collect();
        decode_time += t.elapsed();
        store.insert_batch(IngestBatch::from_events(events)).await?;
        lat.push(t.elapsed());
        sent += batch;
    }
    // Making the bodies is the load generator's work, on this thread: neither time nor CPU counts.
    let elapsed = started.elapsed().saturating_sub(generating);
    let collector_cpu = (cpu.process_seconds() - generating.as_secs_f64()).max(0.0);
    print_row("store", batch, sent, elapsed, lat);
    print_cpu(sent, collector_cpu, elapsed);
    let writing = elapsed.saturating_sub(decode_time).as_secs_f64().max(1e-9);
    println!(
        "       of which decoding {:.0}% ({:.2} us per event); the store's writer alone: {:.0} events/s",
        100.0 * decode_time.as_secs_f64() / elapsed.as_secs_f64().max(1e-9),
        decode_time.as_secs_f64() * 1e6 / (sent.max(1) as f64),
        sent as f64 / writing
    );
    Ok(())
}

/// Times the same CPU-only work every run does, decoding one body of 1000 events, so runs made
/// when this (virtual) machine was slower can be told apart: per-CPU-second figures compare only
/// between runs whose check is alike.
fn machine_check(source: &EventSource, when: &str) -> anyhow::Result<()> {
    const EVENTS: usize = 1000;
    const ROUNDS: usize = 200;
    let text = source.body(0, EVENTS);
    let limits = CollectorConfig::default().decode_limits();
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let decoded = tally_collector::decode::decode_text(&text, &limits)?;
        anyhow::ensure!(
            decoded.events.len() == EVENTS,
            "the check's body did not decode"
        );
        rounds.push(t.elapsed());
    }
    rounds.sort_unstable();
    println!(
        "machine check ({when}): decoding takes {:.2} us per event (median of {ROUNDS} rounds)",
        percentile(&rounds, 0.5).as_secs_f64() * 1e6 / EVENTS as f64
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return Ok(());
        }
        Err(problem) => {
            eprint!("ingest bench: {problem}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("collector")
        .enable_all()
        .build()?;
    let source = Arc::new(EventSource::new(args.ids, args.times));
    let loadgen = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(LOADGEN)
        .enable_all()
        .build()?;
    println!(
        "ingest bench: {}, {} events per batch size, concurrency {}, synchronous {:?}, ids {:?}, times {:?}, account {:?}, {} cores",
        if args.clickhouse_url.is_some() {
            "clickhouse"
        } else {
            "sqlite"
        },
        args.events,
        args.concurrency,
        args.synchronous,
        args.ids,
        args.times,
        args.account,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    machine_check(&source, "before")?;
    runtime.block_on(async {
        for &batch in &args.batches {
            if batch == 0 {
                continue;
            }
            if !args.http_only {
                run_store(&args, batch, &source).await?;
            }
            if !args.store_only {
                run_http(&args, batch, source.clone(), loadgen.handle()).await?;
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;
    machine_check(&source, "after")
}
