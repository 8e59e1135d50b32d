//! PSI end to end against a plaintext intersection: random sizes (0, 1, more), overlaps from none to all,
//! integer, string, unicode and composite keys, `sort` and `broadcast_result` both ways; local mode in-process,
//! cluster mode as two real processes on loopback, a party killed mid-protocol, and a transcript scan showing
//! no key crosses the link in plaintext.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::spawn;
use party_runtime::context::{NoProgress, PartyContext};
use party_runtime::data::DataPolicy;
use party_runtime::link::memory::MemoryHub;
use party_runtime::link::{Channel, Recording};
use party_runtime::{RunOptions, run_request};
use secretflow_crds::{TaskConfig, WorkerRequest};
use serde_json::{Value, json};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

#[derive(Clone, Copy, Debug)]
enum KeyKind {
    Int,
    Text,
    Unicode,
    Composite,
}

/// Key of universe element `u`, as CSV cells.
fn key(kind: KeyKind, u: u64) -> Vec<String> {
    match kind {
        KeyKind::Int => vec![(u * 7919 % 1_000_003).to_string()],
        KeyKind::Text => vec![format!("user-{u:06}")],
        KeyKind::Unicode => vec![format!("用户 é🙂 {u}")],
        KeyKind::Composite => vec![format!("k{}", u % 13), (u / 13).to_string()],
    }
}

fn key_columns(kind: KeyKind) -> Vec<&'static str> {
    if matches!(kind, KeyKind::Composite) { vec!["k1", "k2"] } else { vec!["id"] }
}

/// Write a party's CSV: key columns, then `value` = 1000 * party + universe id; returns universe ids in row order.
fn write_party(path: &Path, kind: KeyKind, ids: &[u64], party: u64) {
    let mut text = key_columns(kind).join(",") + ",value\n";
    for u in ids {
        text += &format!("{},{}\n", key(kind, *u).join(","), party * 1_000_000 + u);
    }
    std::fs::write(path, text).unwrap();
}

/// Rows of a headered CSV without quoted fields.
fn read_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

fn request(dir: &Path, kind: KeyKind, sort: bool, broadcast: bool, protocol: &str) -> Value {
    let cols = key_columns(kind);
    json!({
        "task_id": "t", "subtask_id": "s", "execution_id": "e",
        "sf_init_config": {"parties": ["alice", "bob"], "address": "local"},
        "task_config": {
            "task_type": "psi", "keys": {"alice": cols, "bob": cols},
            "input_paths": {"alice": dir.join("a.csv"), "bob": dir.join("b.csv")},
            "output_paths": {"alice": dir.join("out/a.csv"), "bob": dir.join("out/b.csv")},
            "receiver": "alice", "protocol": protocol, "sort": sort, "broadcast_result": broadcast,
        }
    })
}

/// The expected receiver order of universe ids.
fn expected_order(kind: KeyKind, a: &[u64], b: &[u64], sort: bool) -> Vec<u64> {
    let bs: BTreeSet<u64> = b.iter().copied().collect();
    let mut common: Vec<u64> = a.iter().copied().filter(|u| bs.contains(u)).collect();
    if sort {
        common.sort_by_key(|u| {
            let k = key(kind, *u);
            match kind {
                KeyKind::Int => (String::new(), k[0].parse::<i64>().unwrap()),
                KeyKind::Composite => (k[0].clone(), k[1].parse::<i64>().unwrap()),
                _ => (k[0].clone(), 0),
            }
        });
    }
    common
}

/// Check outputs against the plaintext intersection; rows are whole input rows, aligned across parties.
fn check_outputs(dir: &Path, kind: KeyKind, a: &[u64], b: &[u64], sort: bool, broadcast: bool, result: &Value) {
    let order = expected_order(kind, a, b, sort);
    assert_eq!(result["intersection_count"], json!(order.len()), "{result:#}");
    let width = key_columns(kind).len();
    let ids = |rows: Vec<Vec<String>>, party: u64| -> Vec<u64> {
        rows.iter()
            .map(|r| {
                let v: u64 = r[width].parse().unwrap();
                assert_eq!(v / 1_000_000, party, "a row from the wrong input");
                let u = v % 1_000_000;
                assert_eq!(r[..width].to_vec(), key(kind, u), "the row's key and value belong together");
                u
            })
            .collect()
    };
    assert_eq!(ids(read_rows(&dir.join("out/a.csv")), 1), order, "receiver rows");
    if broadcast {
        assert_eq!(ids(read_rows(&dir.join("out/b.csv")), 2), order, "sender rows, aligned with the receiver's");
        assert_eq!(result["reports"][1]["intersection_count"], json!(order.len()));
    } else {
        assert!(!dir.join("out/b.csv").exists(), "the sender writes nothing without broadcast_result");
        assert_eq!(result["reports"][1]["intersection_count"], json!(-1));
    }
    assert_eq!(result["reports"][0]["original_count"], json!(a.len()));
    assert_eq!(result["reports"][1]["original_count"], json!(b.len()));
}

fn random_case(rng: &mut Rng, size_a: u64, size_b: u64) -> (Vec<u64>, Vec<u64>) {
    let overlap = rng.below(101); // percent of the smaller set
    let shared = size_a.min(size_b) * overlap / 100;
    let mut a: Vec<u64> = (0..size_a).collect();
    let mut b: Vec<u64> = (size_a - shared..size_a - shared + size_b).collect();
    for v in [&mut a, &mut b] {
        for i in (1..v.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_psi_equals_the_plaintext_intersection() {
    for protocol in ["KKRT_PSI_2PC", "ECDH_PSI_2PC"] {
        plaintext_cases(protocol).await;
    }
}

async fn plaintext_cases(protocol: &str) {
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let kinds = [KeyKind::Int, KeyKind::Text, KeyKind::Unicode, KeyKind::Composite];
    let sizes = [(0, 0), (0, 5), (1, 1), (1, 9), (7, 1)];
    let mut cases = 0;
    for round in 0..24u64 {
        let kind = kinds[(round % 4) as usize];
        let (na, nb) = if (round as usize) < sizes.len() {
            sizes[round as usize]
        } else {
            (rng.below(300) + 2, rng.below(300) + 2)
        };
        let (a, b) = random_case(&mut rng, na, nb);
        let (sort, broadcast) = (round % 3 != 0, round % 5 != 1);
        let dir = tempfile::tempdir().unwrap();
        write_party(&dir.path().join("a.csv"), kind, &a, 1);
        write_party(&dir.path().join("b.csv"), kind, &b, 2);
        let req = request(dir.path(), kind, sort, broadcast, protocol).to_string();
        let out = serde_json::to_value(run_request(&req, &RunOptions::default()).await).unwrap();
        assert_eq!(out["status"], "success", "{protocol} {kind:?} {na}x{nb}: {out:#}");
        assert_eq!(out["result"]["psi_protocol"], protocol);
        check_outputs(dir.path(), kind, &a, &b, sort, broadcast, &out["result"]);
        cases += 1;
    }
    assert_eq!(cases, 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_missing_keys_are_value_errors_naming_the_party_and_rows_not_values() {
    let dir = tempfile::tempdir().unwrap();
    write_party(&dir.path().join("a.csv"), KeyKind::Text, &[1, 2, 3], 1);
    std::fs::write(dir.path().join("b.csv"), "id,value\nuser-000001,1\nuser-000002,2\nuser-000001,3\n").unwrap();
    let req = request(dir.path(), KeyKind::Text, true, true, "KKRT_PSI_2PC").to_string();
    let out = serde_json::to_value(run_request(&req, &RunOptions::default()).await).unwrap();
    assert_eq!(out["error"]["type"], "ValueError", "{out:#}");
    let msg = out["error"]["message"].as_str().unwrap();
    assert!(msg.contains("bob") && msg.contains("duplicate") && msg.contains("row 3 repeats row 1"), "{msg}");
    // The error reaches the peer: it names rows, never a key value.
    assert!(!msg.contains("user-"), "{msg}");
    std::fs::write(dir.path().join("b.csv"), "id,value\nuser-000001,1\n,2\n").unwrap();
    let out = serde_json::to_value(run_request(&req, &RunOptions::default()).await).unwrap();
    assert_eq!(out["error"]["type"], "ValueError", "{out:#}");
    assert!(out["error"]["message"].as_str().unwrap().contains("row 2"));
}

/// A link that records every byte this party sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_appears_in_the_link_transcript() {
    for protocol in ["KKRT_PSI_2PC", "ECDH_PSI_2PC"] {
        transcript_case(protocol).await;
    }
}

async fn transcript_case(protocol: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b): (Vec<u64>, Vec<u64>) = ((0..200).collect(), (100..300).collect());
    write_party(&dir.path().join("a.csv"), KeyKind::Text, &a, 1);
    write_party(&dir.path().join("b.csv"), KeyKind::Text, &b, 2);
    let req = WorkerRequest::from_json(&request(dir.path(), KeyKind::Text, true, true, protocol))
        .unwrap()
        .validate()
        .unwrap();
    let task: Arc<TaskConfig> = Arc::new(req.task);
    let hub = MemoryHub::new(&req.parties, Duration::from_secs(30));
    let transcript = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for p in ["alice", "bob"] {
        let link = Recording::new(hub.link(p), transcript.clone());
        let ctx = PartyContext::new(
            p,
            req.parties.clone(),
            Channel::new(Arc::new(link)),
            DataPolicy::default(),
            Arc::new(NoProgress),
        );
        let task = task.clone();
        handles.push(tokio::spawn(async move { party_runtime::jobs::run(&ctx, &task).await.map(|o| o.result) }));
    }
    for h in handles {
        let result = h.await.unwrap().unwrap();
        assert_eq!(result["intersection_count"], 100);
    }
    let bytes = transcript.lock().unwrap().clone();
    assert!(bytes.len() > 300 * 32, "the protocol ran ({} bytes)", bytes.len());
    let mut encoded = Vec::new();
    for u in 0..300 {
        let k = key(KeyKind::Text, u).remove(0);
        assert!(!bytes.windows(k.len()).any(|w| w == k.as_bytes()), "key {k} crossed the link in plaintext");
        encoded.push([(k.len() as u32).to_le_bytes().as_slice(), k.as_bytes()].concat());
    }
    if protocol == "ECDH_PSI_2PC" {
        // No key's hashed point, nor its first 16 bytes (the compared truncation), is sent unblinded.
        let sent: std::collections::HashSet<&[u8]> = bytes.windows(16).collect();
        for point in party_runtime::psi::ecdh::unblinded_points(&encoded) {
            assert!(!sent.contains(&point[..16]), "an unblinded point crossed the link");
        }
    }
}

/// Two cluster-mode requests (alice's and bob's) for the same task.
fn cluster_requests(dir: &Path, kind: KeyKind, protocol: &str) -> (String, String) {
    common::cluster_requests(&request(dir, kind, true, true, protocol))
}

#[test]
fn cluster_mode_two_processes_on_loopback() {
    for protocol in ["KKRT_PSI_2PC", "ECDH_PSI_2PC"] {
        cluster_case(protocol);
    }
}

fn cluster_case(protocol: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b): (Vec<u64>, Vec<u64>) = ((0..500).rev().collect(), (250..900).collect());
    write_party(&dir.path().join("a.csv"), KeyKind::Composite, &a, 1);
    write_party(&dir.path().join("b.csv"), KeyKind::Composite, &b, 2);
    let (ra, rb) = cluster_requests(dir.path(), KeyKind::Composite, protocol);
    let bob = spawn(dir.path(), "bob", &rb, &[]);
    let alice = spawn(dir.path(), "alice", &ra, &[]);
    let mut results = HashMap::new();
    for (name, child) in [("alice", alice), ("bob", bob)] {
        let out = child.wait_with_output().unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: {json:#}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(json["performance_metrics"]["bytes_sent"].as_u64().unwrap() > 500 * 16);
        results.insert(name, json);
    }
    assert_eq!(results["alice"]["result"], results["bob"]["result"]);
    check_outputs(dir.path(), KeyKind::Composite, &a, &b, true, true, &results["alice"]["result"]);
}

#[test]
fn a_party_killed_mid_protocol_fails_the_other_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b): (Vec<u64>, Vec<u64>) = ((0..60_000).collect(), (30_000..90_000).collect());
    write_party(&dir.path().join("a.csv"), KeyKind::Text, &a, 1);
    write_party(&dir.path().join("b.csv"), KeyKind::Text, &b, 2);
    let (ra, rb) = cluster_requests(dir.path(), KeyKind::Text, "ECDH_PSI_2PC");
    let mut bob = spawn(dir.path(), "bob", &rb, &["--link-timeout", "30"]);
    let alice = spawn(dir.path(), "alice", &ra, &["--link-timeout", "30"]);
    // Kill bob as soon as it reports that the protocol has started.
    let stderr = BufReader::new(bob.stderr.take().unwrap());
    let mut started = false;
    for line in stderr.lines() {
        if line.unwrap().contains("psi: protocol") {
            started = true;
            break;
        }
    }
    assert!(started, "bob never reached the protocol");
    bob.kill().unwrap();
    let killed = Instant::now();
    let out = alice.wait_with_output().unwrap();
    let waited = killed.elapsed();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{json:#}");
    assert_eq!(json["error"]["type"], "RuntimeError", "{json:#}");
    let msg = json["error"]["message"].as_str().unwrap();
    assert!(msg.contains("bob"), "{msg}");
    assert!(waited < Duration::from_secs(30), "alice took {waited:?} to notice");
    let _ = bob.wait();
}

#[test]
fn mutual_tls_link_runs_and_refuses_a_foreign_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b): (Vec<u64>, Vec<u64>) = ((0..300).collect(), (100..400).collect());
    write_party(&dir.path().join("a.csv"), KeyKind::Int, &a, 1);
    write_party(&dir.path().join("b.csv"), KeyKind::Int, &b, 2);
    let flags = common::pki(dir.path(), "good", &["alice", "bob", "mallory"]);
    fn args(f: &[String]) -> Vec<&str> {
        f.iter().map(String::as_str).collect()
    }

    let (ra, rb) = cluster_requests(dir.path(), KeyKind::Int, "KKRT_PSI_2PC");
    let bob = spawn(dir.path(), "bob", &rb, &args(&flags[1]));
    let alice = spawn(dir.path(), "alice", &ra, &args(&flags[0]));
    for (name, child) in [("alice", alice), ("bob", bob)] {
        let out = child.wait_with_output().unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: {json:#}");
        assert_eq!(json["result"]["intersection_count"], 200);
    }

    // A run in which bob presents `bob_flags`' certificate: both fail, alice naming bob. Returns bob's result.
    let refused = |run: &str, bob_flags: &[String]| -> Value {
        let (ra, rb) = cluster_requests(dir.path(), KeyKind::Int, "KKRT_PSI_2PC");
        let timeout = ["--link-timeout", "4"];
        let bob = spawn(dir.path(), &format!("bob{run}"), &rb, &[args(bob_flags), timeout.to_vec()].concat());
        let alice = spawn(dir.path(), &format!("alice{run}"), &ra, &[args(&flags[0]), timeout.to_vec()].concat());
        let out = alice.wait_with_output().unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(1), "{json:#}");
        assert!(json["error"]["message"].as_str().unwrap().contains("bob"), "{json:#}");
        let out = bob.wait_with_output().unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert_eq!(out.status.code(), Some(1), "{json:#}");
        json
    };
    // Bob's certificate comes from another CA: alice must not talk to him.
    let rogue = common::pki(dir.path(), "rogue", &["bob"]);
    refused("2", &rogue[0]);
    // Bob's certificate comes from the right CA but names mallory: it cannot speak for bob.
    let json = refused("3", &flags[2]);
    let msg = json["error"]["message"].as_str().unwrap();
    assert!(msg.contains("`bob`") && msg.contains("mallory"), "{msg}");
}
