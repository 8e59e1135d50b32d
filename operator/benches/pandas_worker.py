"""The baseline consumer for celery_throughput.py: a plain Python Celery worker whose task does the
table_statistics work with pandas (read each party's CSV, per-column statistics, write the report) and returns
the Worker-API result shape."""
import json
import os
import time

import pandas as pd
from celery import Celery

broker = os.environ["SF_BENCH_BROKER"]
app = Celery("pandas_worker", broker=broker, backend=broker)
app.conf.task_acks_late = True
app.conf.worker_prefetch_multiplier = 1


@app.task(name="tasks.secretflow.execute_task")
def execute_task(p):
    start = time.time()
    cfg = p["task_config"]
    report = {}
    for party, path in cfg["input_data"].items():
        df = pd.read_csv(path)
        desc = df.describe(include="all")
        stats = json.loads(desc.to_json())
        for col in df.columns:
            stats[col]["missing"] = int(df[col].isna().sum())
        report[party] = stats
    with open(cfg["output_report"], "w") as f:
        json.dump(report, f)
    return {"task_id": p["task_id"], "subtask_id": p["subtask_id"], "execution_id": p["execution_id"],
            "result": {"status": "success", "result": report,
                       "performance_metrics": {"total_execution_time": time.time() - start}}}
