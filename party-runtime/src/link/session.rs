//! Per-run link sessions. Both parties derive the task's session from its configuration, which is the same on
//! every run; on top of it each party draws a fresh nonce when its link starts, and every ordered pair of parties
//! talks under `H(task session, sender's nonce, receiver's nonce)`: the sender's nonce arrives with its hello,
//! the receiver's goes back as the first beat of the watch stream. A message recorded in one run carries a
//! session that no later run derives (the receiver's nonce is fresh), so a replay is refused.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use tonic::Status;

/// Bytes of a party's run nonce.
pub const NONCE: usize = 16;

/// This party's side of the run: its nonce and the session each sender registered with its hello.
pub struct Runs {
    party: String,
    task: String,
    nonce: [u8; NONCE],
    senders: Mutex<HashMap<String, String>>,
}

impl Runs {
    /// A run of the task session `task` at `party`, with a fresh nonce from the operating system.
    pub fn new(party: &str, task: &str) -> Result<Runs, String> {
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).map_err(|e| format!("no OS randomness for the run nonce: {e}"))?;
        Ok(Runs { party: party.into(), task: task.into(), nonce, senders: Mutex::default() })
    }

    /// This party's nonce.
    pub fn nonce(&self) -> Vec<u8> {
        self.nonce.to_vec()
    }

    /// The session under which a sender with nonce `sender` talks to a receiver with nonce `receiver`.
    pub fn derive(task: &str, sender: &[u8], receiver: &[u8]) -> String {
        let mut h = Sha256::new();
        for part in [task.as_bytes(), sender, receiver] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// The session this party sends to a peer under, given the nonce the peer answered with.
    pub fn to_peer(&self, peer: &str, theirs: &[u8]) -> Result<String, String> {
        if theirs.len() != NONCE {
            return Err(format!("peer `{peer}` answered with a run nonce of {} bytes, not {NONCE}", theirs.len()));
        }
        Ok(Runs::derive(&self.task, &self.nonce, theirs))
    }

    /// A hello from `from` with its task session and nonce: refused if it runs another task.
    pub fn register(&self, from: &str, task: &str, nonce: &[u8]) -> Result<(), Status> {
        if task != self.task {
            return Err(Status::failed_precondition(format!(
                "party {} runs session {} but {from} sent session {task}: the two parties run different tasks",
                self.party, self.task
            )));
        }
        if nonce.len() != NONCE {
            return Err(Status::invalid_argument(format!("`{from}` sent a run nonce of {} bytes", nonce.len())));
        }
        let session = Runs::derive(&self.task, nonce, &self.nonce);
        self.senders.lock().unwrap_or_else(|p| p.into_inner()).insert(from.into(), session);
        Ok(())
    }

    /// A message from `from` under `session`: accepted only under the session of `from`'s hello in this run.
    pub fn check(&self, from: &str, session: &str) -> Result<(), Status> {
        let senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        match senders.get(from) {
            Some(s) if s == session => Ok(()),
            Some(_) => Err(Status::permission_denied(format!(
                "party {}: a message from `{from}` belongs to another run of this task (replayed or stale)",
                self.party
            ))),
            None => Err(Status::failed_precondition(format!(
                "party {}: `{from}` sent a message before its hello in this run",
                self.party
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_of_another_run_is_refused() {
        let run = |p: &str| Runs::new(p, "task").expect("nonce");
        let (first, second, alice) = (run("bob"), run("bob"), run("alice"));
        first.register("alice", "task", &alice.nonce()).expect("hello");
        let recorded = alice.to_peer("bob", &first.nonce()).expect("session");
        assert!(first.check("alice", &recorded).is_ok());
        // The same hello and message replayed into the next run: bob's nonce is new.
        second.register("alice", "task", &alice.nonce()).expect("replayed hello");
        let err = second.check("alice", &recorded).expect_err("replayed message");
        assert!(err.message().contains("another run"), "{}", err.message());
        assert!(second.register("alice", "other", &alice.nonce()).is_err(), "another task");
        assert!(run("bob").check("alice", &recorded).is_err(), "no hello yet");
    }
}
