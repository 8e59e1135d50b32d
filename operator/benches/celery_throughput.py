"""Celery throughput: 1,000 small `table_statistics` tasks (the penguin example, two parties) sent with the
unmodified Celery client, served either by the bridge (local executor) or by a plain Python Celery worker
doing the same work with pandas. Prints one JSON line per (consumer, phase):

  batch       send all 1,000, then get() all: throughput, and p50/p99 of send -> get() under that load
  sequential  1,000 x send + get() one at a time: p50/p99 round trip on an idle queue

Both consumers get the same concurrency (default 2, the machine's cores). Needs redis-server and a venv with
celery[redis] and pandas. From the repository root:

    cargo build --release -p secretflow-operator
    $VENV/bin/python operator/benches/celery_throughput.py --bridge target/release/secretflow-operator
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from celery import Celery

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(predicate, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def request(out_dir, i):
    req = json.load(open(os.path.join(ROOT, "examples/requests/table_statistics.json")))
    req["execution_id"] = f"bench-{i}"
    req["task_config"]["output_report"] = os.path.join(out_dir, f"report-{i % 8}.json")
    return req


def run_phase(app, out_dir, n, phase):
    latencies = []
    start = time.perf_counter()
    if phase == "batch":
        sent = []
        for i in range(n):
            t = time.perf_counter()
            sent.append((t, app.send_task("tasks.secretflow.execute_task", args=[request(out_dir, i)], queue="secretflow_queue")))
        for t, r in sent:
            value = r.get(timeout=600)
            latencies.append(time.perf_counter() - t)
            assert value["result"]["status"] == "success", value
    else:
        for i in range(n):
            t = time.perf_counter()
            r = app.send_task("tasks.secretflow.execute_task", args=[request(out_dir, i)], queue="secretflow_queue")
            value = r.get(timeout=600)
            latencies.append(time.perf_counter() - t)
            assert value["result"]["status"] == "success", value
    wall = time.perf_counter() - start
    return {"phase": phase, "tasks": n, "wall_s": round(wall, 3), "tasks_per_s": round(n / wall, 1),
            "p50_ms": round(1000 * percentile(latencies, 50), 2), "p99_ms": round(1000 * percentile(latencies, 99), 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bridge", required=True, help="path to the secretflow-operator binary")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--consumers", default="bridge,python")
    args = ap.parse_args()
    for consumer in args.consumers.split(","):
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        with tempfile.TemporaryDirectory() as tmp:
            redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
            try:
                import redis as redis_py
                wait_ready(lambda: _ping(redis_py, url), "redis")
                if consumer == "bridge":
                    proc = subprocess.Popen([args.bridge, "bridge", "--broker", url, "--concurrency", str(args.concurrency)],
                                            cwd=ROOT, stderr=open(os.path.join(tmp, "bridge.log"), "w"),
                                            env=dict(os.environ, RUST_LOG="warn"))
                    version = "secretflow-operator bridge (local executor)"
                else:
                    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "pandas_worker", "worker", "-Q",
                                             "secretflow_queue", "-c", str(args.concurrency), "--without-mingle",
                                             "--without-gossip", "--loglevel", "WARNING"],
                                            cwd=ROOT, env=dict(os.environ, SF_BENCH_BROKER=url, PYTHONPATH=HERE),
                                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "worker.log"), "w"))
                    import pandas
                    import celery
                    version = f"Python Celery {celery.__version__} prefork worker + pandas {pandas.__version__}"
                app = Celery("bench_client", broker=url, backend=url)
                # Warm up (and wait until the consumer is up).
                app.send_task("tasks.secretflow.execute_task", args=[request(tmp, 0)], queue="secretflow_queue").get(timeout=120)
                for phase in ("batch", "sequential"):
                    row = run_phase(app, tmp, args.n, phase)
                    row.update({"consumer": consumer, "impl": version, "concurrency": args.concurrency})
                    print(json.dumps(row), flush=True)
                proc.terminate()
                proc.wait(timeout=60)
            finally:
                redis.terminate()
                redis.wait()


def _ping(redis_py, url):
    try:
        return redis_py.Redis.from_url(url).ping()
    except Exception:
        return False


if __name__ == "__main__":
    main()
