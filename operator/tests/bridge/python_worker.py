"""A real Python Celery worker serving the same task name, for the shared-queue test.

Its task records each run in the list `python_worker_runs` (task params' execution_id) and returns a
Worker-API-shaped success, so the test can count who ran what; it sets `python_worker_ready` once consuming. Run with
  celery -A python_worker worker -Q secretflow_queue -c 1 --without-mingle --without-gossip
and SF_TEST_BROKER set.
"""
import os

import redis
from celery import Celery
from celery.signals import worker_ready

broker = os.environ["SF_TEST_BROKER"]
app = Celery("python_worker", broker=broker, backend=broker)
app.conf.broker_transport_options = {"visibility_timeout": float(os.environ.get("SF_TEST_VISIBILITY", "3600"))}
app.conf.task_acks_late = True
app.conf.worker_prefetch_multiplier = 1
counter = redis.Redis.from_url(broker)


@worker_ready.connect
def announce(**_):
    # The test sends its tasks only once this worker consumes, so a slow start cannot leave it without work.
    counter.set("python_worker_ready", 1)


@app.task(name="tasks.secretflow.execute_task")
def execute_task(task_params):
    counter.rpush("python_worker_runs", task_params["execution_id"])
    return {"task_id": task_params.get("task_id"), "subtask_id": task_params.get("subtask_id"),
            "execution_id": task_params.get("execution_id"),
            "result": {"status": "success", "result": {"worker": "python"}}}
