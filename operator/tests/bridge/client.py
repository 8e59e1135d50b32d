"""The web container's side of the Celery bridge tests: the unmodified Celery client.

Usage: python client.py COMMAND < JSON, printing one JSON object.
  send    {"broker", "name"?, "params", "options"?}  -> {"id"}
  get     {"broker", "id", "timeout"?}                -> {"ok": true, "value"} | {"ok": false, "exc_type", ...}
  call    send then get in one process
  revoke  {"broker", "id", "terminate"?}              -> {}
  many    {"broker", "params": [..], "timeout"?}      -> {"results": [...], "ids": [...]} (send all, then get all)
  events  {"broker", "seconds"}                      -> {"events": [...]} (what celery.events.Receiver sees)

options: countdown, expires (seconds from now, may be negative), time_limit, soft_time_limit, priority,
ignore_result, task_id.
"""
import json
import sys
import threading

from celery import Celery

TASK = "tasks.secretflow.execute_task"


def app_for(req):
    return Celery("secretflow_sender", broker=req["broker"], backend=req.get("backend", req["broker"]))


def send(app, req):
    opts = dict(req.get("options") or {})
    r = app.send_task(req.get("name", TASK), args=[req["params"]], queue=req.get("queue", "secretflow_queue"), **opts)
    return r.id


def get(app, task_id, timeout):
    r = app.AsyncResult(task_id)
    try:
        value = r.get(timeout=timeout)
        return {"ok": True, "value": value, "state": r.state}
    except Exception as e:  # the client rebuilds the stored exception; report what it raised
        return {"ok": False, "exc_type": type(e).__name__, "exc_module": type(e).__module__,
                "args": [str(a) for a in e.args], "state": r.state}


def main():
    cmd = sys.argv[1]
    req = json.load(sys.stdin)
    app = app_for(req)
    timeout = req.get("timeout", 60)
    if cmd == "send":
        out = {"id": send(app, req)}
    elif cmd == "get":
        out = get(app, req["id"], timeout)
    elif cmd == "call":
        task_id = send(app, req)
        out = get(app, task_id, timeout)
        out["id"] = task_id
    elif cmd == "revoke":
        app.control.revoke(req["id"], terminate=req.get("terminate", False))
        out = {}
    elif cmd == "events":
        seen = []
        with app.connection() as conn:
            recv = app.events.Receiver(conn, handlers={"*": lambda e: seen.append(e)})
            stop = threading.Timer(req["seconds"], lambda: setattr(recv, "should_stop", True))
            stop.start()
            recv.capture(limit=None, timeout=None, wakeup=False)
        keep = ("type", "hostname", "uuid", "freq", "sw_ident", "runtime", "result", "name", "exception")
        out = {"events": [{k: e.get(k) for k in keep if k in e} for e in seen]}
    elif cmd == "many":
        ids = [send(app, dict(req, params=p)) for p in req["params"]]
        out = {"ids": ids, "results": [get(app, i, timeout) for i in ids]}
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
