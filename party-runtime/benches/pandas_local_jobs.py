"""The pandas / scikit-learn baseline for benches/local_jobs.rs: the same task shapes (two parties, 5 numeric
columns each, 10^6 rows), read CSV -> compute -> write, median of 3 runs. Run in an empty folder:

    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install pandas scikit-learn
    cd "$(mktemp -d)" && /tmp/refvenv/bin/python /path/to/party-runtime/benches/pandas_local_jobs.py
"""
import json, time, numpy as np, pandas as pd, statistics
rows, cols = 1_000_000, 10
rng = np.random.default_rng(1)
names = [f"x{i}" for i in range(cols)]
for party, cs in (("alice", names[:5]), ("bob", names[5:])):
    df = pd.DataFrame({c: rng.random(rows) * 100 for c in cs}); df.insert(0, "id", range(rows))
    df.to_csv(f"{party}.csv", index=False, float_format="%.6f")
def stats():
    out = {}
    for p in ("alice", "bob"):
        d = pd.read_csv(f"{p}.csv"); out.update(d.drop(columns="id").describe().to_dict())
    json.dump(out, open("stats.json", "w"))
def scaler():
    from sklearn.preprocessing import StandardScaler
    for p in ("alice", "bob"):
        d = pd.read_csv(f"{p}.csv"); c = [x for x in d.columns if x != "id"]
        d[c] = StandardScaler().fit_transform(d[c]); d.to_csv(f"{p}_scaled.csv", index=False)
for name, fn in (("table_statistics", stats), ("standard_scaler", scaler)):
    ts = []
    for _ in range(3):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    print(json.dumps({"bench": name, "impl": "pandas " + pd.__version__, "median_s": statistics.median(ts), "min_s": min(ts)}))
