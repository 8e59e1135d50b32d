"""Derive the MPC examples' inputs from the penguin tables alice.csv / bob.csv (same rows, same order).

*_complete.csv: the rows where every numeric column is present (pearson_correlation, vif).
*_lr_train.csv / *_lr_test.csv: those rows split 3:1 (every 4th row to test), features standardized with the
training rows' mean and population std (ss_lr); alice keeps the label y.
Run from the repository root: python3 examples/data/make_mpc_data.py
"""
import csv
import statistics

D = "examples/data/"
alice = list(csv.DictReader(open(D + "alice.csv")))
bob = list(csv.DictReader(open(D + "bob.csv")))
A, B = ["bill_length_mm", "bill_depth_mm"], ["flipper_length_mm", "body_mass_g", "year"]
rows = [(a, b) for a, b in zip(alice, bob) if all(a[c] for c in A) and all(b[c] for c in B)]


def write(name, header, records):
    with open(D + name, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(records)


write("alice_complete.csv", ["uid", "y"] + A, [[a["uid"], a["y"]] + [a[c] for c in A] for a, _ in rows])
write("bob_complete.csv", ["uid"] + B, [[b["uid"]] + [b[c] for c in B] for _, b in rows])
train = [r for i, r in enumerate(rows) if i % 4 != 3]
test = [r for i, r in enumerate(rows) if i % 4 == 3]
stats = {}
for side, cols in ((0, A), (1, B)):
    for c in cols:
        v = [float(r[side][c]) for r in train]
        stats[c] = (statistics.fmean(v), statistics.pstdev(v))


def z(r, c):
    m, s = stats[c]
    return f"{(float(r[c]) - m) / s:.6f}"


for split, part in (("train", train), ("test", test)):
    write(f"alice_lr_{split}.csv", ["uid", "y"] + A, [[a["uid"], a["y"]] + [z(a, c) for c in A] for a, _ in part])
    write(f"bob_lr_{split}.csv", ["uid"] + B, [[b["uid"]] + [z(b, c) for c in B] for _, b in part])
