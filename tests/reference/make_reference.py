"""Generate the example dataset, the example requests and the pandas/sklearn reference results.

Run from the repository root (needs pandas, scikit-learn and palmerpenguins):

    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install pandas scikit-learn palmerpenguins
    /tmp/refvenv/bin/python tests/reference/make_reference.py

Writes examples/data/*.csv (the Palmer penguins data split vertically: alice holds the label and the bill
measurements, bob the flipper, mass and year), examples/requests/<task_type>.json (one Worker-API request per
implemented task type, paths relative to the repository root) and tests/reference/ (expected results and output
tables, compared by the secretflow-e2e tests).
"""

import json
import os

import numpy as np
import pandas as pd
from palmerpenguins import load_penguins
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import (accuracy_score, f1_score, mean_absolute_error, mean_squared_error, precision_score,
                             r2_score, recall_score, roc_auc_score, roc_curve)
from sklearn.preprocessing import LabelEncoder, MinMaxScaler, StandardScaler

DATA, REQ, REF = "examples/data", "examples/requests", "tests/reference"
OUT = "examples/out"


def dataset():
    df = load_penguins()
    df.insert(0, "uid", [f"p{i:04d}" for i in range(len(df))])
    df["y"] = (df["species"] == "Adelie").astype(int)
    alice = df[["uid", "y", "island", "bill_length_mm", "bill_depth_mm", "sex"]]
    bob = df[["uid", "flipper_length_mm", "body_mass_g", "year"]]
    alice.to_csv(f"{DATA}/alice.csv", index=False)
    bob.to_csv(f"{DATA}/bob.csv", index=False)
    # Predictions for the evaluation examples, made in plaintext at alice.
    x = alice[["bill_length_mm", "bill_depth_mm"]].fillna(alice[["bill_length_mm", "bill_depth_mm"]].mean())
    prob = LogisticRegression(max_iter=1000).fit(x, alice["y"]).predict_proba(x)[:, 1]
    pd.DataFrame({"uid": alice["uid"], "y": alice["y"], "pred_prob": prob}).to_csv(f"{DATA}/alice_predictions.csv", index=False)
    both = df.dropna(subset=["flipper_length_mm", "body_mass_g"])
    pred = LinearRegression().fit(both[["flipper_length_mm"]], both["body_mass_g"]).predict(both[["flipper_length_mm"]])
    pd.DataFrame({"uid": both["uid"], "body_mass_g": both["body_mass_g"], "pred": pred}).to_csv(
        f"{DATA}/alice_regression_predictions.csv", index=False)
    # Read back what was written, as the runtime will.
    return pd.read_csv(f"{DATA}/alice.csv"), pd.read_csv(f"{DATA}/bob.csv")


def request(task_type, config, name=None):
    req = {
        "task_id": "dag-examples",
        "subtask_id": f"node-{task_type}",
        "execution_id": f"exec-{task_type}-0001",
        "sf_init_config": {"parties": ["alice", "bob"], "address": "local"},
        "spu_config": {"cluster_def": {
            "nodes": [{"party": "alice", "address": "127.0.0.1:12345"}, {"party": "bob", "address": "127.0.0.1:12346"}],
            "runtime_config": {"protocol": "SEMI2K", "field": "FM128"}}},
        "task_config": {"task_type": task_type, **config},
    }
    with open(f"{REQ}/{name or task_type}.json", "w") as f:
        json.dump(req, f, indent=2, ensure_ascii=False)
        f.write("\n")


def io(suffix):
    return ({"alice": f"{DATA}/alice.csv", "bob": f"{DATA}/bob.csv"},
            {"alice": f"{OUT}/alice_{suffix}.csv", "bob": f"{OUT}/bob_{suffix}.csv"})


def floats(values):
    return [None if (v is None or (isinstance(v, float) and np.isnan(v))) else float(v) for v in values]


def save_outputs(task, tables):
    os.makedirs(f"{REF}/{task}", exist_ok=True)
    for party, t in tables.items():
        t.to_csv(f"{REF}/{task}/{party}.csv", index=False)


def main():
    os.makedirs(DATA, exist_ok=True)
    os.makedirs(REQ, exist_ok=True)
    alice, bob = dataset()
    tables = {"alice": alice, "bob": bob}
    owner = {c: p for p, t in tables.items() for c in t.columns if c != "uid"}
    expected = {}

    def transform(task, columns, fn):
        outs = {p: t.copy() for p, t in tables.items()}
        for c in columns:
            outs[owner[c]][c] = fn(c, outs[owner[c]][c])
        save_outputs(task, outs)

    # standard_scaler
    cols = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    inp, out = io("scaled")
    request("standard_scaler", {"input_data": inp, "output_data": out, "columns": cols, "with_mean": True, "with_std": True})
    fitted = {c: StandardScaler().fit(tables[owner[c]][[c]]) for c in cols}
    transform("standard_scaler", cols, lambda c, s: fitted[c].transform(s.to_frame())[:, 0])
    expected["standard_scaler"] = {"output_paths": out, "columns_scaled": cols,
                                   "mean": {c: float(fitted[c].mean_[0]) for c in cols},
                                   "scale": {c: float(fitted[c].scale_[0]) for c in cols}}

    # minmax_scaler
    cols = ["bill_length_mm", "body_mass_g"]
    inp, out = io("minmax")
    request("minmax_scaler", {"input_data": inp, "output_data": out, "columns": cols, "feature_range": [0, 1]})
    fitted = {c: MinMaxScaler().fit(tables[owner[c]][[c]]) for c in cols}
    transform("minmax_scaler", cols, lambda c, s: fitted[c].transform(s.to_frame())[:, 0])
    expected["minmax_scaler"] = {"output_paths": out, "columns_scaled": cols,
                                 "data_min": {c: float(fitted[c].data_min_[0]) for c in cols},
                                 "data_max": {c: float(fitted[c].data_max_[0]) for c in cols}}

    # label_encoder
    cols = ["island", "year"]
    inp, out = io("encoded")
    request("label_encoder", {"input_data": inp, "output_data": out, "columns": cols})
    fitted = {c: LabelEncoder().fit(tables[owner[c]][c]) for c in cols}
    transform("label_encoder", cols, lambda c, s: fitted[c].transform(s))
    expected["label_encoder"] = {"output_paths": out, "columns_encoded": cols,
                                 "classes": {c: fitted[c].classes_.tolist() for c in cols}}

    # onehot_encoder (pandas get_dummies: a missing value gets all zeros)
    cols = ["island", "sex"]
    inp, out = io("onehot")
    request("onehot_encoder", {"input_data": inp, "output_data": out, "columns": cols, "drop": "none"})
    outs = {p: t.copy() for p, t in tables.items()}
    cats, names = {}, {}
    for c in cols:
        t = outs[owner[c]]
        d = pd.get_dummies(t[c], prefix=c, prefix_sep="_", dtype=float)
        at = t.columns.get_loc(c)
        t = pd.concat([t.iloc[:, :at], d, t.iloc[:, at + 1:]], axis=1)
        outs[owner[c]] = t
        cats[c] = sorted(tables[owner[c]][c].dropna().unique().tolist())
        names[c] = list(d.columns)
    save_outputs("onehot_encoder", outs)
    expected["onehot_encoder"] = {"output_paths": out, "columns_encoded": cols, "categories": cats,
                                  "output_columns": names}

    # quantile_binning and equal_width_binning
    for task, cols, n, cut in [
        ("quantile_binning", ["bill_length_mm", "body_mass_g"], 5,
         lambda s, n: pd.qcut(s, n, labels=False, retbins=True, duplicates="drop")),
        ("equal_width_binning", ["bill_depth_mm", "flipper_length_mm"], 4,
         lambda s, n: pd.cut(s, n, labels=False, retbins=True)),
    ]:
        inp, out = io("binned_" + task.split("_")[0])
        request(task, {"input_data": inp, "output_data": out, "columns": cols, "bin_num": n})
        edges, counts = {}, {}
        outs = {p: t.copy() for p, t in tables.items()}
        for c in cols:
            codes, e = cut(tables[owner[c]][c], n)
            outs[owner[c]][c] = codes.astype("Int64")
            edges[c] = [float(x) for x in e]
            counts[c] = [int((codes == i).sum()) for i in range(len(e) - 1)]
        save_outputs(task, outs)
        expected[task] = {"output_paths": out, "columns_binned": cols, "bin_edges": edges, "bin_counts": counts}

    # fillna (mean, default columns: every numeric column one party holds)
    inp, out = io("filled")
    request("fillna", {"input_data": inp, "output_data": out, "method": "mean"})
    cols = [c for p, t in tables.items() for c in t.select_dtypes("number").columns if c != "uid"]
    means = {c: float(tables[owner[c]][c].mean()) for c in cols}
    transform("fillna", cols, lambda c, s: s.fillna(means[c]))
    expected["fillna"] = {"output_paths": out, "columns_filled": cols,
                          "fill_values": means,
                          "filled_counts": {c: int(tables[owner[c]][c].isna().sum()) for c in cols}}

    # table_statistics (default columns)
    request("table_statistics", {"input_data": io("")[0], "output_report": f"{OUT}/table_stats_report.json"})
    stats = {}
    for c in cols:
        d = tables[owner[c]][c].describe()
        stats[c] = {"count": int(d["count"]), **{k: float(d[k]) for k in ["mean", "std", "min", "25%", "50%", "75%", "max"]}}
    expected["table_statistics"] = {"output_report": f"{OUT}/table_stats_report.json", "statistics": stats}

    # biclassification_eval
    pred = pd.read_csv(f"{DATA}/alice_predictions.csv")
    request("biclassification_eval", {"prediction_data": {"alice": f"{DATA}/alice_predictions.csv"}, "label_column": "y",
                                      "prediction_column": "pred_prob", "bucket_size": 10,
                                      "output_report": f"{OUT}/biclass_eval_report.json"})
    y, p = pred["y"], pred["pred_prob"]
    fpr, tpr, _ = roc_curve(y, p)
    hard = (p >= 0.5).astype(int)
    expected["biclassification_eval"] = {"output_report": f"{OUT}/biclass_eval_report.json", "metrics": {
        "auc": roc_auc_score(y, p), "ks": float(np.max(tpr - fpr)), "f1_score": f1_score(y, hard),
        "precision": precision_score(y, hard), "recall": recall_score(y, hard), "accuracy": accuracy_score(y, hard)}}

    # regression_eval
    reg = pd.read_csv(f"{DATA}/alice_regression_predictions.csv")
    request("regression_eval", {"prediction_data": {"alice": f"{DATA}/alice_regression_predictions.csv"},
                                "label_column": "body_mass_g", "prediction_column": "pred",
                                "output_report": f"{OUT}/regression_eval_report.json"})
    y, p = reg["body_mass_g"], reg["pred"]
    mse = mean_squared_error(y, p)
    expected["regression_eval"] = {"output_report": f"{OUT}/regression_eval_report.json", "metrics": {
        "mse": mse, "rmse": float(np.sqrt(mse)), "mae": mean_absolute_error(y, p), "r2_score": r2_score(y, p)}}

    # psi (KKRT, the default protocol): alice without her last 30 rows, bob without his first 40, shuffled
    a_psi = alice.iloc[:-30]
    b_psi = bob.iloc[40:].sample(frac=1.0, random_state=7)
    a_psi.to_csv(f"{DATA}/alice_psi.csv", index=False)
    b_psi.to_csv(f"{DATA}/bob_psi.csv", index=False)
    request("psi", {"keys": {"alice": ["uid"], "bob": ["uid"]},
                    "input_paths": {"alice": f"{DATA}/alice_psi.csv", "bob": f"{DATA}/bob_psi.csv"},
                    "output_paths": {"alice": f"{OUT}/alice_psi_out.csv", "bob": f"{OUT}/bob_psi_out.csv"},
                    "receiver": "alice", "protocol": "KKRT_PSI_2PC", "sort": True})
    common = a_psi.merge(b_psi[["uid"]], on="uid")["uid"]
    order = sorted(common)
    save_outputs("psi", {"alice": a_psi.set_index("uid").loc[order].reset_index(),
                         "bob": b_psi.set_index("uid").loc[order].reset_index()})
    expected["psi"] = {"intersection_count": len(order), "psi_protocol": "KKRT_PSI_2PC", "receiver": "alice",
                       "output_paths": {"alice": f"{OUT}/alice_psi_out.csv", "bob": f"{OUT}/bob_psi_out.csv"},
                       "reports": [{"party": "alice", "original_count": len(a_psi), "intersection_count": len(order)},
                                   {"party": "bob", "original_count": len(b_psi), "intersection_count": len(order)}],
                       "parties": ["alice", "bob"]}

    with open(f"{REF}/expected.json", "w") as f:
        json.dump(expected, f, indent=2, default=float)
        f.write("\n")


if __name__ == "__main__":
    main()
