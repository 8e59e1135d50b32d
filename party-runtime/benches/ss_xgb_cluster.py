"""SS-XGB benchmark, two processes over loopback (cluster mode, the gRPC link): writes a synthetic vertical
dataset (alice: 10 features and the label, bob: 10 features; a nonlinear label that needs both parties), runs
`party-runtime run` for alice and bob at once, and prints one JSON line: each party's total and training time,
bytes sent, and the holdout AUC of the receiver's predictions (with plaintext xgboost's on the same data when
the xgboost package is importable; `xgboost_reference.py` is the same computation).

    cargo build --release -p party-runtime
    python3 party-runtime/benches/ss_xgb_cluster.py target/release/party-runtime [ROWS] [TREES] [DEPTH]

Defaults: 10,000 training rows (5,000 test), 10 trees, depth 5, learning rate 0.3, `sketch_eps` 0.1, FM64.
"""
import csv
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile

exe = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
trees = int(sys.argv[3]) if len(sys.argv) > 3 else 10
depth = int(sys.argv[4]) if len(sys.argv) > 4 else 5
work = tempfile.mkdtemp(prefix="ss_xgb_bench_")
rng = random.Random(1)


def write(n, suffix):
    with open(f"{work}/alice_{suffix}.csv", "w") as fa, open(f"{work}/bob_{suffix}.csv", "w") as fb:
        fa.write(",".join([f"a{i}" for i in range(10)] + ["y"]) + "\n")
        fb.write(",".join(f"b{i}" for i in range(10)) + "\n")
        for _ in range(n):
            a = [rng.gauss(0, 1) for _ in range(10)]
            b = [rng.gauss(0, 1) for _ in range(10)]
            v = (1.5 * a[0] * b[0] + math.sin(2 * a[1]) + 1.2 * (b[1] > 0.5) - 0.8 * abs(a[2]) + 0.5 * b[2]
                 + 0.3 * a[3] + rng.gauss(0, 0.5))
            fa.write(",".join(f"{x:.5f}" for x in a) + f",{int(v > 0)}\n")
            fb.write(",".join(f"{x:.5f}" for x in b) + "\n")


write(rows, "train")
write(rows // 2, "test")


def port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


pa, pb = port(), port()
path = lambda name: f"{work}/{name}"
base = {
    "task_id": "bench", "subtask_id": "ss_xgb", "execution_id": "bench-ss_xgb",
    "sf_init_config": {"parties": {
        "alice": {"address": f"127.0.0.1:{pa}", "listen_addr": f"127.0.0.1:{pa}"},
        "bob": {"address": f"127.0.0.1:{pb}", "listen_addr": f"127.0.0.1:{pb}"}}},
    "spu_config": {"cluster_def": {"nodes": [{"party": "alice", "address": "127.0.0.1:1"},
                                             {"party": "bob", "address": "127.0.0.1:2"}],
                                   "runtime_config": {"protocol": "SEMI2K", "field": "FM64"}}},
    "task_config": {
        "task_type": "ss_xgb",
        "train_data": {"alice": path("alice_train.csv"), "bob": path("bob_train.csv")},
        "features": [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)],
        "label": "y", "label_party": "alice",
        "model_output": {"alice": path("alice_model.json"), "bob": path("bob_model.json")},
        "params": {"num_boost_round": trees, "max_depth": depth, "learning_rate": 0.3, "reg_lambda": 0.1},
        "test_data": {"alice": path("alice_test.csv"), "bob": path("bob_test.csv")},
        "prediction_output": {"alice": path("pred.csv")},
        "prediction_receiver": "alice",
    },
}
procs = {}
for party in ["bob", "alice"]:
    req = json.loads(json.dumps(base))
    req["sf_init_config"]["self_party"] = party
    with open(path(f"{party}.json"), "w") as f:
        json.dump(req, f)
    procs[party] = subprocess.Popen([exe, "run", path(f"{party}.json"), "-q"], stdout=subprocess.PIPE)
out = {p: json.loads(procs[p].communicate()[0]) for p in procs}


def auc(scores, labels):
    pairs = sorted(zip(scores, labels))
    pos = sum(labels)
    ranks, i = [0.0] * len(pairs), 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        for k in range(i, j):
            ranks[k] = (i + 1 + j) / 2
        i = j
    s = sum(r for r, (_, y) in zip(ranks, pairs) if y == 1)
    return (s - pos * (pos + 1) / 2) / (pos * (len(labels) - pos))


pred = list(csv.reader(open(path("pred.csv"))))[1:]
result = {"bench": "ss_xgb", "rows": rows, "features": 20, "trees": trees, "depth": depth,
          "auc": auc([float(r[0]) for r in pred], [float(r[1]) for r in pred])}
for p in ["alice", "bob"]:
    o = out[p]
    result[f"{p}_status"] = o["status"]
    result[f"{p}_total_s"] = o["performance_metrics"]["total_execution_time"]
    phases = o["result"]["training_metrics"]["phases"][p]
    result[f"{p}_train_s"] = round(sum(v["seconds"] for k, v in phases.items() if k.startswith("train")), 3)
    result[f"{p}_phases"] = {k: [round(v["seconds"], 2), v["bytes_sent"], v["rounds"]] for k, v in phases.items()}
    result[f"{p}_bytes_sent"] = o["performance_metrics"].get("bytes_sent")
try:
    import pandas as pd
    import xgboost as xgb

    def load(s):
        x = pd.concat([pd.read_csv(path(f"alice_{s}.csv")), pd.read_csv(path(f"bob_{s}.csv"))], axis=1)
        return x.drop(columns=["y"]), x["y"]

    (xtr, ytr), (xte, yte) = load("train"), load("test")
    m = xgb.XGBClassifier(n_estimators=trees, max_depth=depth, learning_rate=0.3, reg_lambda=0.1, tree_method="hist",
                          max_bin=10, base_score=0.5, min_child_weight=0)
    m.fit(xtr, ytr)
    result["xgboost_auc"] = auc(list(m.predict_proba(xte)[:, 1]), list(yte))
except ImportError:
    pass
print(json.dumps(result))
