//! Executions per second of docpipe-asl: a 10-state Pass chain and the pipeline
//! definition (no-op tasks), in memory and with the durable SQLite journal. Prints one
//! JSON object per measurement; `bench/asl_bench.sh` puts them next to moto's figures.
//!
//! `cargo run --release -p docpipe-asl --example asl_bench -- [N] [PIPELINE_JSON] [--only-chain | --in-memory]`

use std::sync::Arc;
use std::time::Instant;

// The allocator the `docpipe` binary ships with, so the figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use async_trait::async_trait;
use docpipe_asl::clock::SystemClock;
use docpipe_asl::journal::MemoryJournal;
use docpipe_asl::{
    Definition, DurableRunner, ExecutionOptions, ExecutionStatus, Journal, Runner, TaskFailure,
    TaskInvoker,
};
use docpipe_local::journal::SqliteJournal;
use serde_json::{Value, json};

struct NoOp;

#[async_trait]
impl TaskInvoker for NoOp {
    async fn invoke(&self, _resource: &str, _input: Value) -> Result<Value, TaskFailure> {
        Ok(json!({"needs_review": false}))
    }
}

fn pass_chain(n: usize) -> Value {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut s = json!({"Type": "Pass", "Result": i, "ResultPath": format!("$.s{i}")});
        if i + 1 < n {
            s["Next"] = json!(format!("S{}", i + 1));
        } else {
            s["End"] = json!(true);
        }
        states.insert(format!("S{i}"), s);
    }
    json!({"StartAt": "S0", "States": states})
}

fn opts(i: usize) -> ExecutionOptions {
    ExecutionOptions {
        name: format!("e{i}"),
        seed: Some(i as u64),
        ..ExecutionOptions::default()
    }
}

fn report(what: &str, n: usize, secs: f64) {
    println!(
        "{}",
        json!({"bench": what, "executions": n, "seconds": secs, "per_second": n as f64 / secs})
    );
}

async fn in_memory(def: &Definition, input: &Value, n: usize) -> f64 {
    let runner = Runner::new(Arc::new(NoOp), Arc::new(SystemClock));
    let t = Instant::now();
    for i in 0..n {
        let o = runner.run(def, input.clone(), opts(i)).await;
        assert_eq!(o.status, ExecutionStatus::Succeeded, "{o:?}");
    }
    t.elapsed().as_secs_f64()
}

/// As `in_memory`, with `concurrency` executions in flight at once on the runtime's
/// worker threads (one per core: what the embedded host does with many jobs).
async fn in_memory_concurrent(
    def: &Definition,
    input: &Value,
    n: usize,
    concurrency: usize,
) -> f64 {
    let runner = Runner::new(Arc::new(NoOp), Arc::new(SystemClock));
    let def = Arc::new(def.clone());
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < n || !set.is_empty() {
        while next < n && set.len() < concurrency {
            let (runner, def, input) = (runner.clone(), Arc::clone(&def), input.clone());
            let i = next;
            set.spawn(async move { runner.run(&def, input, opts(i)).await });
            next += 1;
        }
        if let Some(joined) = set.join_next().await {
            let o = joined.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(o.status, ExecutionStatus::Succeeded, "{o:?}");
        }
    }
    t.elapsed().as_secs_f64()
}

async fn durable(
    def: &Definition,
    input: &Value,
    n: usize,
    journal: Arc<dyn Journal>,
    concurrency: usize,
) -> f64 {
    let runner = DurableRunner::new(Arc::new(NoOp), Arc::new(SystemClock), journal);
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < n || !set.is_empty() {
        while next < n && set.len() < concurrency {
            let (runner, def, input) = (runner.clone(), def.clone(), input.clone());
            let i = next;
            set.spawn(async move { runner.run(&def, input, opts(i)).await });
            next += 1;
        }
        if let Some(Ok(r)) = set.join_next().await {
            match r {
                Ok(o) => assert_eq!(o.status, ExecutionStatus::Succeeded),
                Err(e) => panic!("journal: {e}"),
            }
        }
    }
    t.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let pipeline_path = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "statemachine/pipeline.asl.json".into());
    let chain = Definition::from_value(&pass_chain(10)).unwrap_or_else(|e| panic!("{e}"));
    let pipeline_text =
        std::fs::read_to_string(&pipeline_path).unwrap_or_else(|e| panic!("{pipeline_path}: {e}"));
    let pipeline = Definition::parse(&pipeline_text).unwrap_or_else(|e| panic!("{e}"));
    let chain_input = json!({"x": 1});
    let pipeline_input =
        json!({"job_id": "job_20240101000000_abc", "correlation_id": "c", "kind": "invoice"});
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        // Warm-up.
        in_memory(&chain, &chain_input, 1000).await;
        report(
            "chain10/in-memory",
            n,
            in_memory(&chain, &chain_input, n).await,
        );
        // `--only-chain`: just that figure (for profiling).
        if args.iter().any(|a| a == "--only-chain") {
            return;
        }
        report(
            "pipeline/in-memory",
            n / 4,
            in_memory(&pipeline, &pipeline_input, n / 4).await,
        );
        report(
            "pipeline/in-memory/concurrent",
            n / 4,
            in_memory_concurrent(&pipeline, &pipeline_input, n / 4, 64).await,
        );
        // `--in-memory`: just the two in-memory figures (for profiling).
        if args.iter().any(|a| a == "--in-memory") {
            return;
        }
        report(
            "chain10/memory-journal",
            n,
            durable(&chain, &chain_input, n, Arc::new(MemoryJournal::new()), 64).await,
        );
        let db = dir.path().join("chain.db");
        let journal = Arc::new(SqliteJournal::open(&db).unwrap_or_else(|e| panic!("{e}")));
        report(
            "chain10/sqlite-journal/sequential",
            n / 10,
            durable(&chain, &chain_input, n / 10, journal.clone(), 1).await,
        );
        let db = dir.path().join("chain2.db");
        let journal = Arc::new(SqliteJournal::open(&db).unwrap_or_else(|e| panic!("{e}")));
        report(
            "chain10/sqlite-journal",
            n,
            durable(&chain, &chain_input, n, journal, 256).await,
        );
        let db = dir.path().join("pipeline.db");
        let journal = Arc::new(SqliteJournal::open(&db).unwrap_or_else(|e| panic!("{e}")));
        report(
            "pipeline/sqlite-journal",
            n / 4,
            durable(&pipeline, &pipeline_input, n / 4, journal, 256).await,
        );
    });
}
