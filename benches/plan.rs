//! Plan at scale: 100,000 declared cards against a state that already holds 100,000 cards.
//!
//! `cargo bench --bench plan` (add `-- 20000` for another size; `-- 1000000` for a million, about
//! 2 GB of memory while the state is built). Prints each phase in-process, then
//! runs the real `cardform plan` binary end to end against the in-process sandbox and prints its
//! wall time and peak memory: for each declaration form (block-style YAML as the README writes
//! it, one-line flow YAML, CSV) against the state, and for all new cards (an empty state) with
//! human output, `--json` and `--out` (with the plan file's size). Figures, not assertions: these
//! machines are noisy.
//!
//! `CARDFORM_BENCH_STATE=postgres://…?state=NAME` measures with the state in PostgreSQL (use a
//! NAME no state has yet); the default is a SQLite file in a temp dir. `CARDFORM_BENCH_KEEP=DIR`
//! keeps the fleet and the SQLite state there afterwards, to profile `cardform plan` on them.

use cardform::decl::{self, DesiredStatus};
use cardform::plan::{self, PlanOptions, ProviderFacts};
use cardform::state::{CardPhase, CardRecord, RunInfo, StateLocation, Store};
use rust_decimal::Decimal;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let yaml = fleet(n);
    let yaml_path = dir.path().join("fleet.yaml");
    std::fs::write(&yaml_path, &yaml).unwrap();
    println!("{n} cards, {:.1} MB of YAML", yaml.len() as f64 / 1e6);
    drop(yaml);

    let t = Instant::now();
    let decls = decl::load(std::slice::from_ref(&yaml_path)).expect("valid fleet");
    println!(
        "load declarations     {:>8.3} s  RSS {:>7.1} MiB",
        t.elapsed().as_secs_f64(),
        peak_rss_mib("VmRSS")
    );

    // A state that already holds every card, with every 10th one frozen (so the plan has work).
    // As `--state` takes it (a URL keeps its password here; only `Display` hides it).
    let state_arg = std::env::var("CARDFORM_BENCH_STATE")
        .unwrap_or_else(|_| dir.path().join("state.db").display().to_string());
    let state_path = StateLocation::parse(&state_arg).expect("a state location");
    println!("state                 {state_path}");
    let t = Instant::now();
    rt.block_on(async {
        let store = Store::open_or_create(&state_path).await.unwrap();
        let serial = store
            .begin_run(RunInfo {
                command: "bench".into(),
                user: "bench".into(),
                host: "bench".into(),
                at: "2026-01-01T00:00:00Z".into(),
            })
            .await
            .unwrap();
        let items: Vec<_> = decls
            .cards
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    None,
                    Some(CardRecord {
                        key: c.key.clone(),
                        external_user_id: c.external_user_id.clone(),
                        product_code: c.product_code.clone(),
                        initial_topup: c.initial_topup,
                        desired_status: DesiredStatus::Active,
                        labels: c.labels.clone(),
                        card_id: Some(format!("card_{i:08}").into()),
                        phase: if i % 10 == 0 {
                            CardPhase::Frozen
                        } else {
                            CardPhase::Active
                        },
                        provider_status: Some("active".into()),
                        last4: Some("4242".into()),
                        charged: Decimal::new(500, 2),
                        attempt: 1,
                        replaced_by: None,
                        balance: None,
                        created_at: "2026-01-01T00:00:00Z".into(),
                        updated_at: "2026-01-01T00:00:00Z".into(),
                    }),
                )
            })
            .collect();
        for chunk in items.chunks(10_000) {
            store.record_batch(serial, chunk).await.unwrap();
        }
        store
            .finish_run(serial, &serde_json::json!({}))
            .await
            .unwrap();
    });
    println!(
        "(build the state      {:>8.3} s, not part of plan)",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let snapshot = rt.block_on(async {
        Store::open_existing(&state_path)
            .await
            .unwrap()
            .unwrap()
            .snapshot()
            .await
            .unwrap()
    });
    println!(
        "read state snapshot   {:>8.3} s  RSS {:>7.1} MiB",
        t.elapsed().as_secs_f64(),
        peak_rss_mib("VmRSS")
    );

    let facts = ProviderFacts {
        products: [cardform::wire::Product {
            product_code: "VISA_USD_STD".into(),
            issue_fee: Some(Decimal::new(500, 2)),
            topup_fee_percent: Some(Decimal::new(15, 1)),
            topup_fee_fixed: Some(Decimal::new(30, 2)),
            is_active: true,
            ..Default::default()
        }]
        .into_iter()
        .map(|p| (p.product_code.clone(), p))
        .collect(),
        balance: Some(Decimal::new(1_000_000, 0)),
        currency: "usdt".into(),
    };
    let t = Instant::now();
    let p = plan::plan(&decls.cards, &snapshot, &facts, &PlanOptions::default());
    println!(
        "plan (pure)           {:>8.3} s  RSS {:>7.1} MiB  ({} actions, {} unchanged)",
        t.elapsed().as_secs_f64(),
        peak_rss_mib("VmRSS"),
        p.actions.len(),
        p.unchanged
    );
    println!("in-process peak RSS   {:>8.1} MiB", peak_rss_mib("VmHWM"));

    // End to end: the real binary, against the sandbox, as a user runs it: each declaration
    // form against the state that holds every card, then a million new cards (an empty state)
    // with human output, `--json` and `--out`.
    let bin = env!("CARGO_BIN_EXE_cardform");
    let sandbox = rt
        .block_on(cardform::sandbox::spawn(cardform::sandbox::SandboxConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            balance: Decimal::new(1_000_000_000, 0),
            ..Default::default()
        }))
        .unwrap();
    let e2e = E2e {
        bin,
        url: sandbox.base_url(),
        dir: dir.path(),
    };
    let forms = [
        ("block YAML", "fleet-block.yaml", fleet_block(n)),
        ("flow YAML", "fleet.yaml", String::new()),
        ("CSV", "fleet.csv", fleet_csv(n)),
    ];
    let mut paths = Vec::new();
    for (name, file, text) in forms {
        let path = dir.path().join(file);
        if !text.is_empty() {
            std::fs::write(&path, text).unwrap();
        }
        paths.push((name, path));
    }
    for (name, path) in &paths {
        let run = e2e.plan(&state_arg, path, &[], true);
        println!(
            "`cardform plan` {name:<10} vs state {:>7.3} s  peak RSS {:>7.1} MiB  {}",
            run.wall, run.rss_mib, run.summary
        );
    }
    let empty = dir.path().join("empty.db").display().to_string();
    rt.block_on(async {
        let location = StateLocation::parse(&empty).unwrap();
        Store::open_or_create(&location).await.unwrap();
    });
    for (name, path) in &paths {
        let run = e2e.plan(&empty, path, &[], true);
        println!(
            "`cardform plan` {name:<10} new     {:>7.3} s  peak RSS {:>7.1} MiB  {}",
            run.wall, run.rss_mib, run.summary
        );
    }
    let (_, flow) = &paths[1];
    let run = e2e.plan(&empty, flow, &["--json"], false);
    println!(
        "`plan --json` new cards      {:>7.3} s  peak RSS {:>7.1} MiB",
        run.wall, run.rss_mib
    );
    let plan_file = dir.path().join("plan.json");
    let out = ["--out", plan_file.to_str().unwrap()];
    let run = e2e.plan(&empty, flow, &out, true);
    let size = std::fs::metadata(&plan_file).map_or(0, |m| m.len());
    println!(
        "`plan --out` new cards       {:>7.3} s  peak RSS {:>7.1} MiB  file {:.1} MB",
        run.wall,
        run.rss_mib,
        size as f64 / 1e6
    );
    rt.block_on(sandbox.shutdown());
    if let Ok(keep) = std::env::var("CARDFORM_BENCH_KEEP") {
        std::fs::create_dir_all(&keep).unwrap();
        for name in [
            "fleet.yaml",
            "fleet-block.yaml",
            "fleet.csv",
            "state.db",
            "state.db-wal",
        ] {
            let _ = std::fs::copy(
                dir.path().join(name),
                std::path::Path::new(&keep).join(name),
            );
        }
    }
}

/// Runs of the real binary against the bench's sandbox.
struct E2e<'a> {
    bin: &'a str,
    url: String,
    dir: &'a std::path::Path,
}

struct Run {
    wall: f64,
    rss_mib: f64,
    summary: String,
}

impl E2e<'_> {
    /// `cardform plan -f path ARGS` against `state`; stdout kept (for its summary) or dropped.
    fn plan(&self, state: &str, path: &std::path::Path, args: &[&str], keep: bool) -> Run {
        let t = Instant::now();
        // GNU time reports the binary's own peak RSS (getrusage on our children would count
        // the pages a forked child shares with this process before exec).
        let rss_file = self.dir.join("maxrss");
        let mut cmd = std::process::Command::new("/usr/bin/time");
        cmd.arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&rss_file)
            .arg(self.bin)
            .env("CARDFORM_API_URL", &self.url)
            .env("CARDFORM_API_KEY", "sandbox-key")
            .env("CARDFORM_API_SECRET", "sandbox-secret")
            .arg("--state")
            .arg(state)
            .args(["plan", "-f"])
            .arg(path)
            .args(args);
        if !keep {
            cmd.stdout(std::process::Stdio::null());
        }
        let out = cmd.output().unwrap();
        let wall = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("Plan:"))
            .collect::<String>();
        let rss_kib: f64 = std::fs::read_to_string(&rss_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(f64::NAN);
        Run {
            wall,
            rss_mib: rss_kib / 1024.0,
            summary,
        }
    }
}

/// The fleet of [`fleet`] in block style, as the README writes cards.
fn fleet_block(n: usize) -> String {
    let mut s = String::with_capacity(n * 100);
    s.push_str("version: 1\ndefaults:\n  product_code: VISA_USD_STD\ncards:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - key: fleet-{i:06}\n    external_user_id: user-{i:06}\n    labels: {{team: t{}}}\n",
            i % 50
        ));
    }
    s
}

/// The fleet of [`fleet`] as CSV.
fn fleet_csv(n: usize) -> String {
    let mut s = String::with_capacity(n * 50);
    s.push_str("key,external_user_id,product_code,label.team\n");
    for i in 0..n {
        s.push_str(&format!(
            "fleet-{i:06},user-{i:06},VISA_USD_STD,t{}\n",
            i % 50
        ));
    }
    s
}

fn fleet(n: usize) -> String {
    let mut s = String::with_capacity(n * 100);
    s.push_str("version: 1\ndefaults:\n  product_code: VISA_USD_STD\ncards:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{key: fleet-{i:06}, external_user_id: user-{i:06}, labels: {{team: t{}}}}}\n",
            i % 50
        ));
    }
    s
}

fn peak_rss_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}
