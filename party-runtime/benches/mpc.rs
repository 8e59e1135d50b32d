//! MPC benchmarks, two processes over loopback (gRPC link), one JSON line per case:
//!
//! - `mul`: an elementwise product of two shared vectors of `SF_BENCH_MUL_N` (default 10^6) fixed-point
//!   values, truncation included (`product_s`: the product alone), on FM64 and FM128, in the secure default
//!   (RLWE slot products, OT truncation) and with the insecure trusted-first-party dealer (SPU's default, for
//!   like-for-like comparison). Times exclude the one-off base OTs, reported separately as `setup_s`.
//!   `SF_BENCH_MUL_REPS=k` repeats the product k times after the first: `repeat_product_s` is their mean.
//! - `ss_lr`: `party-runtime run` on a synthetic 100,000 x 20 vertical dataset (10 + 10 features, label at
//!   alice), batch 1024, 5 epochs, t1 sigmoid (with its limits), then SPU's linear sigmoid `mm1` (no limits,
//!   what SPU's own figure used), both parties as separate processes in cluster mode; the AUC of the receiver's
//!   predictions on a 20,000-row holdout is reported with the plaintext SGD's, and `train_loop_s` is the training
//!   loop alone (what `benches/spu_sslr.py` times for SPU); then the secure runs once more in local mode
//!   (`ss_lr_local`: one process, the in-memory link).
//! - `ss_lr_aby3`: the same task on ABY3 with a third node that holds no data, three processes.
//!
//! - `linear`: the linear layers of one SS-LR batch (`X w` for 1024 x 10 and 1024 x 11 blocks, `X^T e`), by
//!   RLWE (the default) and by OT, per batch.
//! - `sigmoid`: SS-LR's sigmoid phase alone: t1 with its limits on 1024 untruncated logits per step, 489 steps
//!   (`Mpc::sigmoid_from`, FM64, secure default; `SF_BENCH_SIGMOID_ROWS` changes the rows per step).
//! - `ntt`: one forward and one inverse NTT of 8192 and 16384 points over an RLWE prime, on every NTT path the
//!   machine has (AVX-512 IFMA, AVX2 and FMA).
//! - `link`: round trips of messages of several sizes between two gRPC links on loopback (what each MPC round
//!   costs before any computation).
//!
//! `cargo bench -p party-runtime --bench mpc` (`SF_BENCH_MPC=ntt`, `mul`, `linear`, `sigmoid`, `ss_lr`, `ss_lr_aby3` or `link` for one of
//! them). The first line names the CPU and the code paths taken; `SF_DISABLE_AVX512=1` takes the AVX2 paths
//! on a machine that has AVX-512 ([`party_runtime::cpu`]). `SF_BENCH_TLS=1` runs the SS-LR cases' link
//! over mutual TLS.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use party_runtime::context::{NoProgress, PartyContext};
use party_runtime::data::DataPolicy;
use party_runtime::link::grpc::{GrpcConfig, GrpcLink};
use party_runtime::link::{Channel, Link};
use party_runtime::mpc::{Fixed, Kernels, Mpc, Ring};
use secretflow_crds::request::{Beaver, Field, Protocol, SpuRuntime};
use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One party's context over a gRPC link on loopback, and the SEMI2K device description for ring `R`.
async fn party_ctx<R: Ring>(me: &str, ports: (u16, u16), beaver: Beaver) -> (PartyContext, SpuRuntime) {
    let (mine, peer, peer_port) = if me == "alice" { (ports.0, "bob", ports.1) } else { (ports.1, "alice", ports.0) };
    let link = GrpcLink::start(GrpcConfig {
        party: me.into(),
        session: "bench-mpc".into(),
        listen: format!("127.0.0.1:{mine}"),
        peers: vec![(peer.into(), format!("127.0.0.1:{peer_port}"))],
        timeout: Duration::from_secs(120),
        tls: None,
        limits: party_runtime::link::Limits::default(),
    })
    .await
    .unwrap();
    link.connect_all().await.unwrap();
    let parties = vec!["alice".to_string(), "bob".to_string()];
    let ctx = PartyContext::new(me, parties, Channel::new(Arc::new(link)), DataPolicy::default(), Arc::new(NoProgress));
    let spu = SpuRuntime {
        protocol: Protocol::SEMI2K,
        field: if R::BITS == 64 { Field::FM64 } else { Field::FM128 },
        fraction_bits: if R::BITS == 64 { 18 } else { 26 },
        nodes: vec![("alice".into(), String::new()), ("bob".into(), String::new())],
        beaver,
    };
    (ctx, spu)
}

/// One party of the `mul` case (run in a child process).
async fn mul_party<R: Ring>(me: &str, ports: (u16, u16), n: usize, beaver: Beaver) -> Value {
    let (ctx, spu) = party_ctx::<R>(me, ports, beaver).await;
    let start = Instant::now();
    let mut mpc = Mpc::<R>::new(&ctx, &spu).await.unwrap();
    let setup = start.elapsed().as_secs_f64();
    let before = ctx.channel.stats();
    let f = mpc.frac();
    let x = mpc.share((0..n).map(|i| R::encode((i % 1000) as f64 / 7.0, f)).collect());
    let y = mpc.share((0..n).map(|i| R::encode((i % 997) as f64 / -3.0, f)).collect());
    let start = Instant::now();
    let raw = mpc.mul_raw(&x, &y).await.unwrap();
    let product = start.elapsed().as_secs_f64();
    let z = mpc.trunc(&raw, f).await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    let after = ctx.channel.stats();
    // With `SF_BENCH_MUL_REPS`, the same product again that many times: the mean of the repeats, with the
    // first product's one-time costs (key material, tables) paid.
    let reps: usize = std::env::var("SF_BENCH_MUL_REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let again = Instant::now();
    for _ in 0..reps {
        mpc.mul_raw(&x, &y).await.unwrap();
    }
    let repeat = (reps > 0).then(|| again.elapsed().as_secs_f64() / reps as f64);
    // The peer's shares are the same values: z is 2x * 2y elementwise = 4xy. Check a few by opening.
    let opened = mpc.reveal(&z.slice(0..16), None).await.unwrap().unwrap();
    let got = mpc.decode(&opened);
    ctx.close().await;
    for (i, g) in got.iter().enumerate() {
        let want = 4.0 * ((i % 1000) as f64 / 7.0) * ((i % 997) as f64 / -3.0);
        assert!((g - want).abs() < 1e-3, "{g} vs {want}");
    }
    json!({"party": me, "seconds": secs, "product_s": product, "repeat_product_s": repeat, "setup_s": setup,
           "bytes_sent": after.bytes_sent - before.bytes_sent, "rounds": after.rounds - before.rounds})
}

/// CPU seconds (user and system) of this process's waited-for children so far, from `/proc/self/stat`
/// (`cutime` and `cstime`, in the kernel's 100 Hz clock ticks); 0 where there is no procfs.
fn children_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name's closing parenthesis, from field 3 (state): cutime is field 16.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<f64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect();
    fields.get(13..15).map_or(0.0, |t| (t[0] + t[1]) / 100.0)
}

/// Both parties' processes with `args`: alice's and bob's JSON lines and the CPU seconds both took together.
fn spawn_pair(args: &[String]) -> (Value, Value, f64) {
    let cpu = children_cpu_s();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["bob", "alice"]
        .iter()
        .map(|p| Command::new(&exe).arg("--party").arg(p).args(args).stdout(Stdio::piped()).spawn().unwrap())
        .collect();
    let mut outs: Vec<Value> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            serde_json::from_slice(&o.stdout).unwrap()
        })
        .collect();
    let alice = outs.pop().unwrap();
    (alice, outs.pop().unwrap(), children_cpu_s() - cpu)
}

fn bench_mul() {
    let n: usize = std::env::var("SF_BENCH_MUL_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    for field in ["FM64", "FM128"] {
        for beaver in ["ot", "trusted_first_party"] {
            let ports = (free_port(), free_port());
            let args: Vec<String> = vec![
                "mul".into(),
                field.into(),
                beaver.into(),
                n.to_string(),
                ports.0.to_string(),
                ports.1.to_string(),
            ];
            let (a, b, cpu) = spawn_pair(&args);
            println!(
                "{}",
                json!({"bench": "mpc_mul", "field": field, "beaver": beaver, "n": n, "cpu_s_both_parties": cpu,
                       "seconds": a["seconds"].as_f64().unwrap().max(b["seconds"].as_f64().unwrap()),
                       "product_s": a["product_s"], "repeat_product_s": a["repeat_product_s"],
                       "setup_s": a["setup_s"], "alice_bytes_sent": a["bytes_sent"], "bob_bytes_sent": b["bytes_sent"],
                       "rounds": a["rounds"],
                       "insecure": beaver == "trusted_first_party"})
            );
        }
    }
}

/// One party of the `linear` case: `batches` SS-LR batches' linear layers (1024 x 10 and 1024 x 11 blocks
/// times the shared weights, their transposes times a shared residual), by RLWE or by OT.
async fn linear_party(me: &str, ports: (u16, u16), rlwe: bool, batches: usize) -> Value {
    let (ctx, spu) = party_ctx::<u64>(me, ports, Beaver::Ot).await;
    let mut mpc = Mpc::<u64>::new(&ctx, &spu).await.unwrap();
    let (b, d) = (1024, [10, 11]);
    let mine_d = d[mpc.me()];
    let x: Vec<u64> = (0..b * mine_d).map(|i| u64::encode(((i % 17) as f64 - 8.0) / 4.0, 18)).collect();
    let xt: Vec<u64> = (0..b * mine_d).map(|i| x[(i % b) * mine_d + i / b]).collect();
    let w: [Vec<u64>; 2] = d.map(|n| (0..n as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect());
    let e: Vec<u64> = (0..b as u64).map(|i| u64::encode((i % 5) as f64 / 10.0, 18).wrapping_add(i << 40)).collect();
    if rlwe {
        // The key exchange, once per device, outside the timing.
        mpc.matvec_he_pair(&x, [&w[0], &w[1]], [(b, d[0]), (b, d[1])]).await.unwrap();
    }
    let before = ctx.channel.stats();
    let start = Instant::now();
    for _ in 0..batches {
        if rlwe {
            mpc.matvec_he_pair(&x, [&w[0], &w[1]], [(b, d[0]), (b, d[1])]).await.unwrap();
            mpc.matvec_he_pair(&xt, [&e, &e], [(d[0], b), (d[1], b)]).await.unwrap();
        } else {
            mpc.matmul_plain_pair(&x, [&w[0], &w[1]], [(b, d[0], 1), (b, d[1], 1)], 54).await.unwrap();
            mpc.matmul_plain_bounded_pair(&xt, [&e, &e], [(d[0], b, 1), (d[1], b, 1)], 21).await.unwrap();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let after = ctx.channel.stats();
    ctx.close().await;
    json!({"party": me, "seconds": secs, "bytes_sent": after.bytes_sent - before.bytes_sent,
           "rounds": after.rounds - before.rounds})
}

/// The linear layers of one SS-LR batch (FM64), by RLWE and by OT: seconds and bytes per batch.
fn bench_linear() {
    let batches = 50;
    for method in ["rlwe", "ot"] {
        let ports = (free_port(), free_port());
        let args: Vec<String> =
            vec!["linear".into(), method.into(), batches.to_string(), ports.0.to_string(), ports.1.to_string()];
        let (a, b, cpu) = spawn_pair(&args);
        let per = |v: &Value, k: &str| v[k].as_f64().unwrap() / batches as f64;
        println!(
            "{}",
            json!({"bench": "mpc_linear", "field": "FM64", "method": method, "batch": 1024, "features": [10, 11],
                   "cpu_s_both_parties": cpu,
                   "seconds_per_batch": per(&a, "seconds").max(per(&b, "seconds")),
                   "alice_bytes_per_batch": per(&a, "bytes_sent"), "bob_bytes_per_batch": per(&b, "bytes_sent"),
                   "rounds_per_batch": per(&a, "rounds")})
        );
    }
}

/// One party of the `sigmoid` case: `steps` t1 sigmoids of `rows` untruncated logits (`2f` fraction bits), as
/// SS-LR's forward product hands them over; a few results are opened and checked against plaintext t1.
async fn sigmoid_party(me: &str, ports: (u16, u16), steps: usize, rows: usize) -> Value {
    let (ctx, spu) = party_ctx::<u64>(me, ports, Beaver::Ot).await;
    let mut mpc = Mpc::<u64>::new(&ctx, &spu).await.unwrap();
    let f = mpc.frac();
    // Both parties hold the same share, so each logit is twice the value encoded here: -5.0 to 5.0.
    let half = |i: usize| ((i * 37) % 1001) as f64 / 400.0 - 1.25;
    let z: Vec<u64> = (0..rows).map(|i| u64::encode(half(i), 2 * f)).collect();
    let before = ctx.channel.stats();
    let start = Instant::now();
    let (z, mut out) = (mpc.share(z), mpc.constant(0.0, 0));
    for _ in 0..steps {
        out = mpc.sigmoid_from(&z, 64, f, secretflow_crds::tasks::learning::SigType::T1).await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let after = ctx.channel.stats();
    let opened = mpc.reveal(&out.slice(0..rows.min(64)), None).await.unwrap().unwrap();
    let got = mpc.decode(&opened);
    ctx.close().await;
    for (i, g) in got.iter().enumerate() {
        let want = (0.5 + 2.0 * half(i) / 4.0).clamp(0.0, 1.0);
        assert!((g - want).abs() < 1e-3, "t1({}) = {g}, want {want}", 2.0 * half(i));
    }
    json!({"party": me, "seconds": secs, "bytes_sent": after.bytes_sent - before.bytes_sent,
           "rounds": after.rounds - before.rounds})
}

/// SS-LR's sigmoid phase alone (t1 with its limits, 1024 rows, 489 steps as in 100,000 rows x 5 epochs;
/// `SF_BENCH_SIGMOID_ROWS` changes the rows per step, keeping about 500,000 in all).
fn bench_sigmoid() {
    let rows: usize = std::env::var("SF_BENCH_SIGMOID_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let steps = (489 * 1024 / rows.max(1)).max(1);
    let ports = (free_port(), free_port());
    let args: Vec<String> =
        vec!["sigmoid".into(), steps.to_string(), rows.to_string(), ports.0.to_string(), ports.1.to_string()];
    let (a, b, cpu) = spawn_pair(&args);
    println!(
        "{}",
        json!({"bench": "mpc_sigmoid", "field": "FM64", "sig_type": "t1", "rows": rows, "steps": steps,
               "cpu_s_both_parties": cpu,
               "seconds": a["seconds"].as_f64().unwrap().max(b["seconds"].as_f64().unwrap()),
               "alice_bytes_sent": a["bytes_sent"], "bob_bytes_sent": b["bytes_sent"], "rounds": a["rounds"]})
    );
}

fn child(args: &[String]) {
    let me = args[1].clone();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let out = match args[2].as_str() {
        "mul" => {
            let beaver = if args[4] == "ot" { Beaver::Ot } else { Beaver::TrustedFirstParty };
            let n: usize = args[5].parse().unwrap();
            let ports = (args[6].parse().unwrap(), args[7].parse().unwrap());
            if args[3] == "FM64" {
                rt.block_on(mul_party::<u64>(&me, ports, n, beaver))
            } else {
                rt.block_on(mul_party::<u128>(&me, ports, n, beaver))
            }
        }
        "linear" => {
            let (batches, ports) = (args[4].parse().unwrap(), (args[5].parse().unwrap(), args[6].parse().unwrap()));
            rt.block_on(linear_party(&me, ports, args[3] == "rlwe", batches))
        }
        "sigmoid" => {
            let (steps, rows) = (args[3].parse().unwrap(), args[4].parse().unwrap());
            let ports = (args[5].parse().unwrap(), args[6].parse().unwrap());
            rt.block_on(sigmoid_party(&me, ports, steps, rows))
        }
        other => panic!("unknown case {other}"),
    };
    println!("{out}");
}

fn bench_ss_lr() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::synthetic(100_000, 20_000, (10, 10), true, 2024);
    // t1 (SecretFlow's default, with its limits), then SPU's linear sigmoid mm1 (what SPU's figure used).
    let cases = [
        ("t1", "ot", false),
        ("t1", "trusted_first_party", true),
        ("mm1", "ot", false),
        ("mm1", "trusted_first_party", true),
    ];
    for (sig, label, beaver) in cases {
        let req = common::request(&dir, &data, "FM64", ss_lr_params(sig), beaver);
        ss_lr_cluster(&dir, &data, &req, (sig, label, beaver));
    }
    for sig in ["t1", "mm1"] {
        bench_ss_lr_local(&dir, &data, sig);
    }
}

/// SS-LR on ABY3: the same task with carol, a third node that holds no data, as three processes.
fn bench_ss_lr_aby3() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::synthetic(100_000, 20_000, (10, 10), true, 2024);
    for sig in ["t1", "mm1"] {
        let req = common::on_aby3(&dir, common::request(&dir, &data, "FM64", ss_lr_params(sig), false));
        ss_lr_cluster(&dir, &data, &req, (sig, "aby3", false));
    }
}

/// The benchmark's SS-LR parameters with sigmoid `sig`.
fn ss_lr_params(sig: &str) -> Value {
    json!({"epochs": 5, "learning_rate": 0.1, "batch_size": 1024, "sig_type": sig, "eps": 0.0})
}

/// Run `req` with each party in its own process (cluster mode on loopback) and print the benchmark line.
fn ss_lr_cluster(
    dir: &tempfile::TempDir,
    data: &common::Dataset,
    req: &Value,
    (sig, label, insecure): (&str, &str, bool),
) {
    let cpu = children_cpu_s();
    let requests = common::party_requests(req);
    let names: Vec<&str> = requests.iter().map(|(p, _)| p.as_str()).collect();
    let tls = std::env::var("SF_BENCH_TLS").is_ok_and(|v| v == "1");
    let flags = if tls { common::pki(dir.path(), "bench", &names) } else { vec![vec![]; names.len()] };
    let children: Vec<_> = requests
        .iter()
        .zip(flags)
        .rev()
        .map(|((p, r), flags)| {
            let file = dir.path().join(format!("{p}.json"));
            std::fs::write(&file, r).unwrap();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_party-runtime"));
            (p.clone(), cmd.arg("run").arg(&file).arg("-q").args(flags).stdout(Stdio::piped()).spawn().unwrap())
        })
        .collect();
    let outs: std::collections::BTreeMap<String, Value> = children
        .into_iter()
        .map(|(p, c)| (p, serde_json::from_slice(&c.wait_with_output().unwrap().stdout).unwrap()))
        .collect();
    let cpu = children_cpu_s() - cpu;
    let (alice, bob) = (&outs["alice"], &outs["bob"]);
    assert_eq!(alice["status"], "success", "{alice:#}");
    let preds = common::predictions(dir, "pred_prob");
    let (pw, pb_, _) = common::plain_sgd(data, 5, 0.1, 1024, sig, true, 0.0, "none");
    let plain = data.test_logits(&pw, pb_);
    let total = |v: &Value| v["performance_metrics"]["total_execution_time"].as_f64().unwrap();
    let algo = |v: &Value| v["performance_metrics"]["algorithm_exec_time"].as_f64().unwrap();
    let sent = |v: &Value| v["performance_metrics"]["bytes_sent"].as_f64().unwrap();
    let slowest = outs.values().map(total).fold(0.0, f64::max);
    println!(
        "{}",
        json!({"bench": "ss_lr", "rows": 100_000, "features": 20, "batch_size": 1024, "epochs": 5,
               "sig_type": sig, "field": "FM64", "beaver": label, "insecure": insecure, "parties": outs.len(),
               "tls": tls,
               "alice_total_s": total(alice), "bob_total_s": total(bob), "cpu_s_all_parties": cpu,
               "train_loop_s": train_loop_s(&alice["result"]["training_metrics"]["phases"]["alice"]),
               "cores_busy": cpu / slowest,
               "alice_algorithm_s": algo(alice), "bob_algorithm_s": algo(bob),
               "bytes_sent": outs.iter().map(|(p, v)| (p.clone(), sent(v))).collect::<std::collections::BTreeMap<_, _>>(),
               "auc": common::auc(&preds, &data.y_test), "plaintext_auc": common::auc(&plain, &data.y_test),
               "final_loss": alice["result"]["training_metrics"]["final_loss"],
               "linear_products": alice["result"]["training_metrics"]["linear_products"],
               "phases": alice["result"]["training_metrics"]["phases"]})
    );
}

/// The seconds of SS-LR's training loop in a party's `phases` (forward, sigmoid, backward and update): what
/// SPU's compiled training loop measures, without loading, the final loss or predictions.
fn train_loop_s(phases: &Value) -> f64 {
    ["forward X w", "sigmoid", "backward X^T e and update"].iter().filter_map(|k| phases[k]["seconds"].as_f64()).sum()
}

/// The secure SS-LR case in local mode: both parties in one process over the in-memory link (no gRPC, no
/// second process), what the protocol costs without the transport.
fn bench_ss_lr_local(dir: &tempfile::TempDir, data: &common::Dataset, sig: &str) {
    let params = json!({"epochs": 5, "learning_rate": 0.1, "batch_size": 1024, "sig_type": sig, "eps": 0.0});
    let mut req = common::request(dir, data, "FM64", params, false);
    req["sf_init_config"] = json!({"parties": ["alice", "bob"], "address": "local"});
    let file = dir.path().join("local.json");
    std::fs::write(&file, req.to_string()).unwrap();
    let cpu = children_cpu_s();
    let out = Command::new(env!("CARGO_BIN_EXE_party-runtime")).arg("run").arg(&file).arg("-q").output().unwrap();
    let cpu = children_cpu_s() - cpu;
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["status"], "success", "{out:#}");
    let preds = common::predictions(dir, "pred_prob");
    println!(
        "{}",
        json!({"bench": "ss_lr_local", "rows": 100_000, "features": 20, "batch_size": 1024, "epochs": 5,
               "sig_type": sig, "field": "FM64", "beaver": "ot", "insecure": false,
               "total_s": out["performance_metrics"]["total_execution_time"], "cpu_s": cpu,
               "train_loop_s": train_loop_s(&out["result"]["training_metrics"]["phases"]["alice"]),
               "bytes_sent": out["performance_metrics"]["bytes_sent"],
               "auc": common::auc(&preds, &data.y_test),
               "phases": out["result"]["training_metrics"]["phases"]["alice"]})
    );
}

/// The link alone: message round trips between two gRPC links on loopback (one process, two tasks).
fn bench_link() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (pa, pb) = (free_port(), free_port());
        let config = |me: &str, peer: &str, mine: u16, theirs: u16| GrpcConfig {
            party: me.into(),
            session: "bench-link".into(),
            listen: format!("127.0.0.1:{mine}"),
            peers: vec![(peer.into(), format!("127.0.0.1:{theirs}"))],
            timeout: Duration::from_secs(60),
            tls: None,
            limits: party_runtime::link::Limits::default(),
        };
        let a = GrpcLink::start(config("alice", "bob", pa, pb)).await.unwrap();
        let b = GrpcLink::start(config("bob", "alice", pb, pa)).await.unwrap();
        let (ra, rb) = tokio::join!(a.connect_all(), b.connect_all());
        ra.unwrap();
        rb.unwrap();
        for (size, n) in [(100usize, 1000), (10_000, 1000), (1_000_000, 100), (16_000_000, 10)] {
            let start = Instant::now();
            let ping = async {
                for i in 0..n {
                    a.send("bob", &format!("ping{i}"), vec![1; size]).await.unwrap();
                    a.recv("bob", &format!("pong{i}")).await.unwrap();
                }
            };
            let pong = async {
                for i in 0..n {
                    b.recv("alice", &format!("ping{i}")).await.unwrap();
                    b.send("alice", &format!("pong{i}"), vec![1; size]).await.unwrap();
                }
            };
            tokio::join!(ping, pong);
            let secs = start.elapsed().as_secs_f64() / n as f64;
            println!(
                "{}",
                json!({"bench": "link_round_trip", "bytes_each_way": size, "micros": secs * 1e6,
                       "mb_per_s_each_way": size as f64 / secs / 1e6})
            );
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--party") {
        return child(&args);
    }
    let cpu = party_runtime::cpu::cpu();
    println!(
        "{}",
        json!({"bench": "cpu", "model": cpu.model, "features": cpu.features, "avx512_disabled": cpu.avx512_disabled,
               "ntt": cpu.ntt.name()})
    );
    let which = std::env::var("SF_BENCH_MPC").unwrap_or_default();
    if which.is_empty() || which == "ntt" {
        for n in [8192, 16384] {
            for (path, fwd, inv) in party_runtime::mpc::ntt_bench(n, 300) {
                println!("{}", json!({"bench": "ntt", "n": n, "path": path, "forward_us": fwd, "inverse_us": inv}));
            }
        }
    }
    if which.is_empty() || which == "mul" {
        bench_mul();
    }
    if which.is_empty() || which == "linear" {
        bench_linear();
    }
    if which.is_empty() || which == "sigmoid" {
        bench_sigmoid();
    }
    if which.is_empty() || which == "ss_lr" {
        bench_ss_lr();
    }
    if which.is_empty() || which == "ss_lr_aby3" {
        bench_ss_lr_aby3();
    }
    if which.is_empty() || which == "link" {
        bench_link();
    }
}
