//! What a real API server does with a custom object before storing it: structural-schema pruning (fields the
//! CRD's openAPIV3Schema does not declare are dropped, unless `x-kubernetes-preserve-unknown-fields`; nulls
//! of non-nullable fields are dropped) and validation (types, `required`, `enum`, `minimum` / `maximum`,
//! `anyOf` / `oneOf`), and on update the transition rule `self == oldSelf` (an immutable field). A controller
//! writing a field its CRD lacks then loses it here as on a cluster.

use serde_json::{Map, Value};

/// Prune `obj` (a whole custom object) to `schema` and validate it; the errors name each field's path.
pub fn admit(schema: &Value, obj: &mut Value) -> Result<(), String> {
    let Some(map) = obj.as_object_mut() else { return Err("the body is not a JSON object".into()) };
    // The server owns these; metadata is ObjectMeta whatever the schema says.
    let server: Vec<(String, Value)> =
        ["apiVersion", "kind", "metadata"].iter().filter_map(|k| map.remove_entry(*k)).collect();
    prune(schema, obj);
    let mut errors = Vec::new();
    validate(schema, obj, "", &mut errors);
    if let Some(map) = obj.as_object_mut() {
        map.extend(server);
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.join(", ")) }
}

fn preserves(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true)
}

/// The properties a node declares, its own and its `allOf` / `anyOf` / `oneOf` branches'.
fn properties(schema: &Value) -> Map<String, Value> {
    let mut out = schema["properties"].as_object().cloned().unwrap_or_default();
    for branch in ["allOf", "anyOf", "oneOf"].iter().flat_map(|k| schema[*k].as_array().into_iter().flatten()) {
        for (k, v) in properties(branch) {
            out.entry(k).or_insert(v);
        }
    }
    out
}

/// Drop what `schema` does not declare, recursively.
fn prune(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            let props = properties(schema);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keep_unknown = preserves(schema) || additional.is_some();
            map.retain(|k, v| match props.get(k) {
                // A null where the schema does not allow one is dropped, not refused.
                Some(s) => !v.is_null() || s["nullable"] == Value::Bool(true),
                None => keep_unknown,
            });
            for (k, v) in map.iter_mut() {
                if let Some(s) = props.get(k).or(additional) {
                    prune(s, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                items.iter_mut().for_each(|v| prune(s, v));
            }
        }
        _ => {}
    }
}

/// The one CEL rule the stand-in evaluates: a field that may not change once set.
const IMMUTABLE: &str = "self == oldSelf";

/// Transition rules (`x-kubernetes-validations` naming `oldSelf`) checked on an update from `old` to `new`;
/// the errors name each field's path and carry the rule's message, as a real API server words them.
pub fn transitions(schema: &Value, old: &Value, new: &Value) -> Result<(), String> {
    let mut errors = Vec::new();
    transition(schema, old, new, "", &mut errors);
    if errors.is_empty() { Ok(()) } else { Err(errors.join(", ")) }
}

fn transition(schema: &Value, old: &Value, new: &Value, path: &str, errors: &mut Vec<String>) {
    for rule in schema["x-kubernetes-validations"].as_array().into_iter().flatten() {
        if rule["rule"] == IMMUTABLE && !old.is_null() && old != new {
            let message = rule["message"].as_str().unwrap_or("Invalid value");
            errors.push(format!("{path}: Invalid value: \"object\": {message}"));
        }
    }
    if let (Value::Object(o), Value::Object(n)) = (old, new) {
        for (k, s) in properties(schema) {
            let (a, b) = (o.get(&k).unwrap_or(&Value::Null), n.get(&k).unwrap_or(&Value::Null));
            transition(&s, a, b, &join(path, &k), errors);
        }
    }
}

/// Check `value` against `schema`; errors go to `errors` prefixed by `path`.
fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    // CEL rules other than the immutability one are not evaluated here: refuse them rather than pass them.
    for rule in schema["x-kubernetes-validations"].as_array().into_iter().flatten() {
        if rule["rule"] != IMMUTABLE {
            errors.push(format!("{path}: the stand-in API server does not evaluate the CEL rule {}", rule["rule"]));
        }
    }
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) && schema.get("type").is_some() {
            errors.push(format!("{path}: Invalid value: null: must be of type {}", schema["type"]));
        }
        return;
    }
    if let Some(t) = schema["type"].as_str() {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{path}: Invalid value: {value}: must be of type {t}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{path}: Unsupported value: {value}"));
    }
    if let (Some(min), Some(v)) = (schema["minimum"].as_f64(), value.as_f64())
        && v < min
    {
        errors.push(format!("{path}: Invalid value: {value}: must be greater than or equal to {min}"));
    }
    if let (Some(max), Some(v)) = (schema["maximum"].as_f64(), value.as_f64())
        && v > max
    {
        errors.push(format!("{path}: Invalid value: {value}: must be less than or equal to {max}"));
    }
    for (key, count) in [("anyOf", None), ("oneOf", Some(1))] {
        if let Some(branches) = schema[key].as_array() {
            let passing = branches
                .iter()
                .filter(|b| {
                    let mut e = Vec::new();
                    validate(b, value, path, &mut e);
                    e.is_empty()
                })
                .count();
            if passing == 0 || count.is_some_and(|c| passing != c) {
                errors.push(format!("{path}: Invalid value: {value}: must match {key} of the schema"));
            }
        }
    }
    match value {
        Value::Object(map) => {
            let props = properties(schema);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in map {
                if let Some(s) = props.get(k).or(additional) {
                    validate(s, v, &join(path, k), errors);
                }
            }
            for r in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    errors.push(format!("{}: Required value", join(path, r)));
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    validate(s, v, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "count": {"type": "integer", "minimum": 1},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}},
                "maybe": {"type": "string", "nullable": true}}},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}})
    }

    #[test]
    fn undeclared_fields_are_pruned_and_preserved_ones_kept() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "anything": 1},
            "spec": {"name": "a", "extra": 1, "free": {"deep": {"z": 1}}, "labels": {"k": "v"},
                     "items": [{"x": 1, "y": 2}], "maybe": null, "count": null},
            "status": {"phase": "Running", "unknownField": true}, "top": 1});
        admit(&schema(), &mut obj).unwrap();
        assert_eq!(
            obj,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "anything": 1},
            "spec": {"name": "a", "free": {"deep": {"z": 1}}, "labels": {"k": "v"}, "items": [{"x": 1}],
                     "maybe": null},
            "status": {"phase": "Running"}})
        );
    }

    #[test]
    fn an_immutable_field_may_not_change_on_update() {
        let mut schema = schema();
        schema["properties"]["spec"]["x-kubernetes-validations"] =
            json!([{"rule": "self == oldSelf", "message": "frozen"}]);
        let old = json!({"spec": {"name": "a"}, "status": {"phase": "Running"}});
        let mut same = old.clone();
        same["status"]["phase"] = json!("Succeeded");
        assert_eq!(transitions(&schema, &old, &same), Ok(()));
        let mut edited = old.clone();
        edited["spec"]["name"] = json!("b");
        assert_eq!(transitions(&schema, &old, &edited), Err("spec: Invalid value: \"object\": frozen".into()));
        schema["properties"]["spec"]["x-kubernetes-validations"] = json!([{"rule": "self.name != ''"}]);
        assert!(admit(&schema, &mut edited).unwrap_err().contains("does not evaluate"));
    }

    #[test]
    fn invalid_values_name_their_path() {
        let cases = [
            (json!({"spec": {"count": 1}}), "spec.name: Required value"),
            (json!({"spec": {"name": 3}}), "spec.name: Invalid value: 3: must be of type string"),
            (json!({"spec": {"name": "a", "count": 0}}), "spec.count: Invalid value: 0"),
            (json!({"spec": {"name": "a", "mode": "c"}}), "spec.mode: Unsupported value: \"c\""),
            (json!({"spec": {"name": "a", "items": [{"x": "1"}]}}), "spec.items[0].x: Invalid value"),
            (json!({"spec": {"name": "a", "labels": {"k": 1}}}), "spec.labels.k: Invalid value"),
        ];
        for (mut obj, expected) in cases {
            let e = admit(&schema(), &mut obj).unwrap_err();
            assert!(e.contains(expected), "{e} lacks {expected}");
        }
    }
}
