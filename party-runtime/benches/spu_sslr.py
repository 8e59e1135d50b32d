"""SPU's own SS-LR time on this machine, for docs/BENCHMARKS.md: the benchmark's 100,000 x 20 dataset (written by
`SF_DUMP_DIR=DIR cargo test -p party-runtime --test ss_lr dump_benchmark_dataset -- --ignored`), batch 1024,
5 epochs, learning rate 0.1, FM64 with 18 fraction bits, every party (two, or three for ABY3) as a thread of one
process.

The step is SecretFlow's SS-SGD step written in JAX: `X w`, the sigmoid, `X^T (p - y)`, the update; the data is
fed to SPU once and each epoch is one compiled executable (SPU's fastest way to run the loop: the per-call
cost of running one executable per batch, about 12 ms here, is left out). The sigmoid is `lin` (SPU's linear
`SIGMOID_MM1`, `0.5 + x / 8` without limits, as the SPU figure in issue #4 used; our `sig_type: mm1`) or `t1`
(SecretFlow's default, `0.5 + x / 4` clipped to [0, 1] by `jnp.select`).

Needs `pip install spu` (0.9.5 measured; its SEMI2K takes only trusted-party triples, `MultiParty` is refused).
    python3 party-runtime/benches/spu_sslr.py DIR SEMI2K lin mem     # trusted first party, in-memory link
    python3 party-runtime/benches/spu_sslr.py DIR CHEETAH lin brpc   # SPU's secure 2PC protocol, loopback TCP
    python3 party-runtime/benches/spu_sslr.py DIR ABY3 t1 brpc       # SPU's three-party protocol, loopback TCP
Prints one JSON line: the training loop's seconds, the CPU seconds of the process, the holdout AUC.
"""
import csv
import json
import resource
import sys
import threading
import time

import jax.numpy as jnp
import numpy as np
import spu
from spu import libspu
from spu.utils import frontend as fe

DIR, PROTOCOL, SIG, LINK = sys.argv[1:5]
BATCH, EPOCHS, LR = 1024, 5, 0.1


def load(split):
    a = list(csv.reader(open(f"{DIR}/alice_{split}.csv")))[1:]
    b = list(csv.reader(open(f"{DIR}/bob_{split}.csv")))[1:]
    x = np.array([[float(v) for v in ra[:-1]] + [float(v) for v in rb] + [1.0] for ra, rb in zip(a, b)])
    return x.astype(np.float32), np.array([[float(r[-1])] for r in a], np.float32)


def step(x, y, w):
    z = jnp.matmul(x, w)
    if SIG == "t1":
        r = 0.5 + 0.25 * z
        p = jnp.select([r < 0, r > 1], [jnp.zeros_like(r), jnp.ones_like(r)], r)
    else:
        p = 0.5 + 0.125 * z
    return w - (LR / x.shape[0]) * jnp.matmul(jnp.transpose(x), p - y)


xtr, ytr = load("train")
xte, yte = load("test")
rows, width = xtr.shape
starts = range(0, rows, BATCH)


def epoch(x, y, w):
    for s in starts:
        w = step(x[s:s + BATCH], y[s:s + BATCH], w)
    return w


config = libspu.RuntimeConfig(protocol=spu.parse_protocol_kind(PROTOCOL), field=libspu.FieldType.FM64)
config.fxp_fraction_bits = 18
if PROTOCOL == "SEMI2K":
    config.beaver_type = libspu.RuntimeConfig.TrustedFirstParty
PARTIES = 3 if PROTOCOL == "ABY3" else 2
io = spu.Io(PARTIES, config)
w0 = np.zeros((width, 1), np.float32)
secret = [libspu.Visibility.VIS_SECRET] * 3
executable, _ = fe.compile(fe.Kind.JAX, epoch, (xtr, ytr, w0), {}, ["x", "y", "w"], secret, lambda _: ["w"])
shares = {name: io.make_shares(v, libspu.Visibility.VIS_SECRET) for name, v in [("x", xtr), ("y", ytr), ("w", w0)]}

desc = libspu.link.Desc()
base = 20000 + int(time.time() * 1000) % 20000
for rank in range(PARTIES):
    desc.add_party(f"p{rank}", f"127.0.0.1:{base + rank}" if LINK == "brpc" else f"thread_{rank}")
weights, seconds = [None] * PARTIES, [0.0] * PARTIES


def party(rank):
    link = libspu.link.create_brpc(desc, rank) if LINK == "brpc" else libspu.link.create_mem(desc, rank)
    runtime = spu.Runtime(link, config)
    for name, share in shares.items():
        runtime.set_var(name, share[rank])
    start = time.time()
    for _ in range(EPOCHS):
        runtime.run(executable)
    seconds[rank] = time.time() - start
    weights[rank] = runtime.get_var("w")


cpu = resource.getrusage(resource.RUSAGE_SELF)
threads = [threading.Thread(target=party, args=(rank,)) for rank in range(PARTIES)]
for t in threads:
    t.start()
for t in threads:
    t.join()
after = resource.getrusage(resource.RUSAGE_SELF)
w = io.reconstruct(weights).reshape(-1)
scores, labels = xte @ w, yte.reshape(-1)
ranks = np.empty(len(scores))
ranks[np.argsort(scores)] = np.arange(1, len(scores) + 1)
positives = labels.sum()
auc = (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * (len(labels) - positives))
print(json.dumps({"bench": "spu_ss_lr", "protocol": PROTOCOL, "sig": SIG, "link": LINK, "train_s": max(seconds),
                  "cpu_s": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime, "auc": float(auc)}))
