//! A status merge patch under construction, shared by the task and the pipeline reconcilers: fields set,
//! conditions kept metav1-style (a transition time that moves only when the status does), the terminal
//! failure written the same way for both kinds, and `observedGeneration`.

use jiff::Timestamp;
use serde_json::{Map, Value};

use secretflow_crds::ErrorInfo;
use secretflow_crds::crd::{TaskCondition, TaskPhase};

/// RFC 3339 to the second, as every status time is written.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A status time read back (`None` if absent or unreadable).
pub(crate) fn parse_time(s: &Option<String>) -> Option<Timestamp> {
    s.as_deref().and_then(|s| s.parse().ok())
}

/// The patch for one object's `status`.
pub(crate) struct StatusPatch {
    now: Timestamp,
    generation: Option<i64>,
    observed: Option<i64>,
    patch: Map<String, Value>,
    before: Vec<TaskCondition>,
    conditions: Vec<TaskCondition>,
}

impl StatusPatch {
    /// A patch at `now` for an object of `generation` whose status has `conditions` and describes generation
    /// `observed`.
    pub fn new(now: Timestamp, generation: Option<i64>, observed: Option<i64>, conditions: &[TaskCondition]) -> Self {
        StatusPatch {
            now,
            generation,
            observed,
            patch: Map::new(),
            before: conditions.to_vec(),
            conditions: conditions.to_vec(),
        }
    }

    /// Set field `key`.
    pub fn set(&mut self, key: &str, v: impl serde::Serialize) {
        self.patch.insert(key.into(), serde_json::to_value(v).unwrap_or(Value::Null));
    }

    /// Set condition `type_` (keeping its transition time if its status does not change).
    pub fn condition(&mut self, type_: &str, status: bool, reason: &str, message: &str) {
        let status = if status { "True" } else { "False" };
        let last = self.conditions.iter().position(|x| x.type_ == type_);
        let time = match last.map(|i| &self.conditions[i]) {
            Some(x) if x.status == status => x.last_transition_time.clone(),
            _ => rfc3339(self.now),
        };
        let new = TaskCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: time,
            observed_generation: self.generation,
        };
        match last {
            Some(i) => self.conditions[i] = new,
            None => self.conditions.push(new),
        }
    }

    /// The end of a failed object: phase `Failed`, its error, the completion time, `Complete` false and
    /// `Failed` true for `reason`.
    pub fn failed(&mut self, reason: &str, error: &ErrorInfo) {
        self.condition("Complete", false, reason, &error.message);
        self.condition("Failed", true, reason, &error.message);
        self.set("phase", TaskPhase::Failed);
        self.set("error", error);
        self.set("completionTime", rfc3339(self.now));
    }

    /// The merge patch: the fields set, the conditions and `observedGeneration` where they changed.
    pub fn into_value(mut self) -> Value {
        if self.conditions != self.before {
            let conditions = std::mem::take(&mut self.conditions);
            self.set("conditions", conditions);
        }
        if self.observed != self.generation {
            self.set("observedGeneration", self.generation);
        }
        Value::Object(self.patch)
    }
}
