"""A real Python Celery worker serving the same task name, for the shared-queue test.

Its task records each run in the list `python_worker_runs` (task params' execution_id) and returns a
Worker-API-shaped success, so the test can count who ran what. Run with
  celery -A python_worker worker -Q secretflow_queue -c 1 --without-mingle --without-gossip
and SF_TEST_BROKER set.
"""
import os

import redis
from celery import Celery

broker = os.environ["SF_TEST_BROKER"]
app = Celery("python_worker", broker=broker, backend=broker)
app.conf.broker_transport_options = {"visibility_timeout": float(os.environ.get("SF_TEST_VISIBILITY", "3600"))}
app.conf.task_acks_late = True
app.conf.worker_prefetch_multiplier = 1
counter = redis.Redis.from_url(broker)


@app.task(name="tasks.secretflow.execute_task")
def execute_task(task_params):
    counter.rpush("python_worker_runs", task_params["execution_id"])
    return {"task_id": task_params.get("task_id"), "subtask_id": task_params.get("subtask_id"),
            "execution_id": task_params.get("execution_id"),
            "result": {"status": "success", "result": {"worker": "python"}}}
