#!/usr/bin/env bash
# Install what the test suite needs beyond the Rust toolchain, idempotently (fast when already there):
#   - redis-server (Debian package): the Celery bridge tests start their own servers on free ports;
#   - a Python venv with celery[redis]: the unmodified Celery client (and a real Celery worker) the bridge
#     tests drive. Location: $SF_TEST_VENV, default ~/.cache/secretflow-operator/celery-venv.
set -euo pipefail

if ! command -v redis-server >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y --no-install-recommends redis-server >/dev/null 2>&1 \
    || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends redis-server >/dev/null; }
  # The package starts a system server on 6379; the tests start their own and do not need it.
fi
redis-server --version

venv="${SF_TEST_VENV:-$HOME/.cache/secretflow-operator/celery-venv}"
if ! "$venv/bin/python" -c "import celery, redis" 2>/dev/null; then
  python3 -m venv "$venv"
  # celery[redis]: plain `celery redis` misses `packaging` on kombu 5.7 (celery-wire.md).
  "$venv/bin/pip" install --quiet --disable-pip-version-check "celery[redis]>=5.3,<6"
fi
"$venv/bin/python" -c "import celery, kombu; print('celery', celery.__version__, 'kombu', kombu.__version__)"
