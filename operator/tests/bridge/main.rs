//! The Celery bridge against a real redis-server and the unmodified Python Celery client.
//! Needs `tests/install-deps.sh` (redis-server and the celery[redis] venv).

mod harness;

mod client_semantics;
mod recovery;
