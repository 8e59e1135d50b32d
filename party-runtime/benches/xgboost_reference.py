"""Plaintext xgboost (`tree_method=hist`, `max_bin` = the buckets of `sketch_eps`) on a vertically split
dataset, with ss_xgb's parameters: the holdout AUC (logistic) or R2 (linear) that docs/BENCHMARKS.md and the
ss_xgb tests compare against. Needs `pip install xgboost scikit-learn pandas`.

    python3 party-runtime/benches/xgboost_reference.py ALICE_TRAIN BOB_TRAIN ALICE_TEST BOB_TEST LABEL \
        [num_boost_round max_depth learning_rate reg_lambda sketch_eps]
Prints one JSON line.
"""
import json
import sys

import pandas as pd
import xgboost as xgb
from sklearn.metrics import r2_score, roc_auc_score

a_tr, b_tr, a_te, b_te, label = sys.argv[1:6]
rounds, depth, lr, lam, eps = (list(map(float, sys.argv[6:11])) + [10, 5, 0.1, 0.1, 0.1][len(sys.argv[6:11]):])
objective = "binary:logistic"


def load(a, b):
    x = pd.concat([pd.read_csv(a), pd.read_csv(b)], axis=1)
    x = x.drop(columns=[c for c in x.columns if c in ("uid", "id")])
    return x.drop(columns=[label]), x[label]


xtr, ytr = load(a_tr, b_tr)
xte, yte = load(a_te, b_te)
if set(ytr.unique()) - {0, 1}:
    objective = "reg:squarederror"
model = xgb.XGBRegressor if objective.startswith("reg") else xgb.XGBClassifier
m = model(n_estimators=int(rounds), max_depth=int(depth), learning_rate=lr, reg_lambda=lam, tree_method="hist",
          max_bin=int(round(1 / eps)), base_score=0.5, min_child_weight=0, gamma=0, objective=objective)
m.fit(xtr, ytr)
if objective.startswith("reg"):
    print(json.dumps({"r2": r2_score(yte, m.predict(xte))}))
else:
    print(json.dumps({"auc": roc_auc_score(yte, m.predict_proba(xte)[:, 1])}))
