"""scikit-learn and numpy baselines for SS-LR: the penguin example (examples/data/*_lr_*.csv) or, with
`--synthetic DIR`, the benchmark's 100,000 x 20 dataset (written by
`SF_DUMP_DIR=DIR cargo test -p party-runtime --test ss_lr dump_benchmark_dataset -- --ignored`).

Prints the holdout AUC of scikit-learn's LogisticRegression (defaults) and of numpy mini-batch SGD with SS-LR's
schedule and t1 sigmoid. Run from the repository root with numpy and scikit-learn installed:
    python3 party-runtime/benches/sklearn_lr.py                       # penguins, batch 128, 10 epochs, l2 0.1
    python3 party-runtime/benches/sklearn_lr.py --synthetic DIR       # batch 1024, 5 epochs, no penalty
"""
import csv
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

SYNTHETIC = len(sys.argv) > 2 and sys.argv[1] == "--synthetic"


def load(split):
    if SYNTHETIC:
        # alice: a0..a9,y; bob: b0..b9 (no id column).
        a = list(csv.reader(open(f"{sys.argv[2]}/alice_{split}.csv")))[1:]
        b = list(csv.reader(open(f"{sys.argv[2]}/bob_{split}.csv")))[1:]
        x = np.array([[float(v) for v in ra[:-1]] + [float(v) for v in rb] for ra, rb in zip(a, b)])
        return x, np.array([float(r[-1]) for r in a])
    a = list(csv.reader(open(f"examples/data/alice_lr_{split}.csv")))[1:]
    b = list(csv.reader(open(f"examples/data/bob_lr_{split}.csv")))[1:]
    x = np.array([[float(v) for v in ra[2:]] + [float(v) for v in rb[1:]] for ra, rb in zip(a, b)])
    return x, np.array([float(r[1]) for r in a])


def sgd(x, y, epochs=10, lr=0.1, batch=128, l2=0.1):
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(epochs):
        for s in range(0, len(y), batch):
            xb, yb = x[s:s + batch], y[s:s + batch]
            p = np.clip(0.5 + (xb @ w + b) / 4, 0, 1)
            e = p - yb
            w -= lr * (xb.T @ e / len(yb) + l2 * w)
            b -= lr * e.sum() / len(yb)
    return w, b


xtr, ytr = load("train")
xte, yte = load("test")
sk = LogisticRegression().fit(xtr, ytr)
print("sklearn LogisticRegression AUC", roc_auc_score(yte, sk.predict_proba(xte)[:, 1]))
w, b = sgd(xtr, ytr, epochs=5, batch=1024, l2=0.0) if SYNTHETIC else sgd(xtr, ytr)
print("numpy SGD (t1, SS-LR schedule) AUC", roc_auc_score(yte, xte @ w + b))
