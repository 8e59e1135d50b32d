//! What the bridge tests run against: a real `redis-server` on a free port, the real bridge binary, the
//! unmodified Python Celery client (and a real Celery worker) from the venv `tests/install-deps.sh` makes.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// This package's directory: cargo's run-time variable (the checkout under test, even when the build was shared
/// with a checkout elsewhere), else the compile-time one.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
}

/// The repository root (requests use paths relative to it; the bridge runs there).
pub fn repo_root() -> PathBuf {
    manifest_dir().parent().expect("workspace root").to_path_buf()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Wait until `f` returns Some, or panic naming `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private redis-server, stopped on drop.
pub struct Redis {
    child: Child,
    /// Its plain port (the tests' own assertions use it).
    pub port: u16,
    /// With TLS: the TLS port and the CA that signed the server certificate.
    tls: Option<(u16, PathBuf)>,
    _dir: tempfile::TempDir,
}

/// A CA and a `localhost` / 127.0.0.1 server certificate signed by it, written into `dir`: (ca, cert, key).
fn server_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: OpenSSL (the Python client) takes a leaf whose issuer equals its subject as self-signed.
    ca_params.distinguished_name.push(DnType::CommonName, "bridge test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("params");
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &*ca).expect("certificate");
    let paths = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&paths.0, ca.pem()).expect("write");
    std::fs::write(&paths.1, cert.pem()).expect("write");
    std::fs::write(&paths.2, key.serialize_pem()).expect("write");
    paths
}

impl Redis {
    /// Start one and wait until it answers PING.
    pub fn start() -> Redis {
        Redis::launch(false)
    }

    /// Start one that also serves TLS (`rediss://`) on a second port, with a certificate from a test CA.
    pub fn start_tls() -> Redis {
        Redis::launch(true)
    }

    fn launch(tls: bool) -> Redis {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null());
        let tls = tls.then(|| {
            let (ca, cert, key) = server_pki(dir.path());
            let tls_port = free_port();
            cmd.args(["--tls-port", &tls_port.to_string(), "--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(&cert)
                .arg("--tls-key-file")
                .arg(&key)
                .arg("--tls-ca-cert-file")
                .arg(&ca);
            (tls_port, ca)
        });
        let child = cmd.spawn().expect("redis-server is not installed: run tests/install-deps.sh");
        let redis = Redis { child, port, tls, _dir: dir };
        wait_for("redis-server to answer", Duration::from_secs(10), || {
            redis.conn_opt().and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).ok())
        });
        redis
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// What the bridge is given: the TLS URL when serving TLS, else [`Redis::url`].
    pub fn broker_url(&self) -> String {
        match &self.tls {
            Some((port, _)) => format!("rediss://localhost:{port}/0"),
            None => self.url(),
        }
    }

    /// What the Python client is given (kombu and the Celery backend take the CA in the query).
    pub fn client_url(&self) -> String {
        match &self.tls {
            Some((_, ca)) => format!("{}?ssl_cert_reqs=required&ssl_ca_certs={}", self.broker_url(), ca.display()),
            None => self.url(),
        }
    }

    /// The CA to trust, when serving TLS.
    pub fn ca(&self) -> Option<&Path> {
        self.tls.as_ref().map(|(_, ca)| ca.as_path())
    }

    fn conn_opt(&self) -> Option<redis::Connection> {
        redis::Client::open(self.url()).ok()?.get_connection().ok()
    }

    /// A connection for assertions.
    pub fn conn(&self) -> redis::Connection {
        self.conn_opt().expect("redis connection")
    }

    /// Run one command.
    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query(&mut self.conn()).expect("redis command")
    }

    /// The Worker API status events of `execution_id`, oldest first.
    pub fn status_events(&self, execution_id: &str) -> Vec<Value> {
        let all: Vec<String> = self.cmd(&["LRANGE", "task_status_queue", "0", "-1"]);
        let mut events: Vec<Value> = all
            .iter()
            .filter_map(|s| serde_json::from_str::<Value>(s).ok())
            .filter(|e| e["execution_id"] == execution_id)
            .collect();
        events.reverse();
        events
    }

    /// The statuses of `execution_id`'s events, oldest first.
    pub fn statuses(&self, execution_id: &str) -> Vec<String> {
        self.status_events(execution_id).iter().map(|e| e["status"].as_str().unwrap_or("").to_string()).collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running bridge process, killed on drop.
pub struct Bridge {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Bridge {
    /// Start `secretflow-operator bridge --broker <redis> ARGS` in the repository root and wait until ready.
    pub fn start(redis: &Redis, args: &[&str]) -> Bridge {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("bridge.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_secretflow-operator"));
        if let Some(ca) = redis.ca() {
            // rustls-native-certs reads SSL_CERT_FILE: the bridge trusts the test CA like a system CA.
            cmd.env("SSL_CERT_FILE", ca);
        }
        let child = cmd
            .arg("bridge")
            .args(["--broker", &redis.broker_url()])
            .args(args)
            .current_dir(repo_root())
            .env("RUST_LOG", "info,party_runtime=warn,redis=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start the bridge");
        let mut bridge = Bridge { child, log, _dir: dir };
        wait_for("the bridge to be ready", Duration::from_secs(20), || {
            if let Ok(Some(status)) = bridge.child.try_wait() {
                panic!("the bridge exited with {status}:\n{}", bridge.log());
            }
            bridge.log().contains("bridge ready").then_some(())
        });
        bridge
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the crash case.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit (warm shutdown).
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill -TERM");
        let child = &mut self.child;
        wait_for("the bridge to exit after SIGTERM", timeout, || child.try_wait().ok().flatten())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The venv with celery[redis] (`SF_TEST_VENV`, default ~/.cache/secretflow-operator/celery-venv).
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("SF_TEST_VENV").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/secretflow-operator/celery-venv")
    });
    assert!(
        venv.join("bin/python").exists(),
        "no Celery venv at {} (run tests/install-deps.sh, or set SF_TEST_VENV)",
        venv.display()
    );
    venv
}

/// Run `client.py COMMAND` with `input` (plus the broker) and return its JSON answer.
pub fn client(redis: &Redis, command: &str, mut input: Value) -> Value {
    input["broker"] = redis.client_url().into();
    let script = manifest_dir().join("tests/bridge/client.py");
    let mut child = Command::new(venv().join("bin/python"))
        .arg(script)
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python client");
    child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("client input");
    let out = child.wait_with_output().expect("client output");
    assert!(out.status.success(), "client.py {command} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("client.py {command} printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

/// Send `params` with the Celery client and wait for `get()`.
pub fn call(redis: &Redis, params: &Value, options: Value, timeout: u64) -> Value {
    client(redis, "call", json!({"params": params, "options": options, "timeout": timeout}))
}

/// An example request from `examples/requests`, with its outputs moved into `out` and a fresh execution id.
pub fn example(name: &str, out: &Path, execution_id: &str) -> Value {
    let path = repo_root().join("examples/requests").join(format!("{name}.json"));
    let mut req: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("example")).expect("JSON");
    req["execution_id"] = execution_id.into();
    let tc = req["task_config"].as_object_mut().expect("task_config");
    for key in ["output_paths", "output_path"] {
        if let Some(Value::Object(paths)) = tc.get_mut(key) {
            for (party, p) in paths.iter_mut() {
                *p = out.join(format!("{party}_{execution_id}.csv")).display().to_string().into();
            }
        }
    }
    if let Some(r) = tc.get_mut("output_report") {
        *r = out.join(format!("{execution_id}_report.json")).display().to_string().into();
    }
    req
}

/// A PSI request over two generated inputs of `n` rows each (ECDH, so it runs for a few seconds at n ~ 30k).
pub fn slow_psi(dir: &Path, n: usize, execution_id: &str) -> Value {
    for (party, offset) in [("alice", 0), ("bob", n / 2)] {
        let mut csv = String::from("uid,x\n");
        for i in offset..offset + n {
            csv.push_str(&format!("user-{i},{i}\n"));
        }
        std::fs::write(dir.join(format!("{party}_in.csv")), csv).expect("write input");
    }
    let p = |name: &str| dir.join(name).display().to_string();
    json!({
        "task_id": "dag-bridge-tests", "subtask_id": "node-psi", "execution_id": execution_id,
        "sf_init_config": {"parties": ["alice", "bob"], "address": "local"},
        "task_config": {
            "task_type": "psi", "protocol": "ECDH_PSI_2PC", "receiver": "alice",
            "keys": {"alice": ["uid"], "bob": ["uid"]},
            "input_paths": {"alice": p("alice_in.csv"), "bob": p("bob_in.csv")},
            "output_paths": {"alice": p(&format!("alice_{execution_id}.csv")), "bob": p(&format!("bob_{execution_id}.csv"))}
        }
    })
}
