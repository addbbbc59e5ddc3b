//! Comparing the structure of two result documents: the same keys in the same order, the same
//! kinds of values (integer, float, null, bool, the same strings), the same array lengths — with
//! the measured numbers themselves, the timestamp and the server's address left aside.

use serde_json::Value;

/// Keys whose string values differ from run to run.
const VOLATILE: [&str; 3] = ["timestamp", "api_base", "response_id"];

/// Describes `v`'s structure as a value: objects keep their keys in order, numbers become
/// `"int"` or `"float"`, strings stay (except `timestamp`, `api_base` and `response_id`, which differ from run to run).
pub fn shape(v: &Value) -> Value {
    shape_at(v, "")
}

fn shape_at(v: &Value, key: &str) -> Value {
    match v {
        Value::Object(m) => Value::Array(
            m.iter()
                .map(|(k, v)| Value::Array(vec![Value::String(k.clone()), shape_at(v, k)]))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| shape_at(v, key)).collect()),
        Value::Number(n) if n.is_f64() => Value::String("float".into()),
        Value::Number(_) => Value::String("int".into()),
        Value::String(_) if VOLATILE.contains(&key) => Value::String("string".into()),
        other => other.clone(),
    }
}

/// Removes every field named in `keys` at any depth (fields added on purpose since a fixture was
/// written); returns how many were removed.
pub fn strip(v: &mut Value, keys: &[&str]) -> usize {
    match v {
        Value::Object(m) => {
            let before = m.len();
            m.retain(|k, _| !keys.contains(&k.as_str()));
            let removed = before - m.len();
            removed + m.values_mut().map(|x| strip(x, keys)).sum::<usize>()
        }
        Value::Array(a) => a.iter_mut().map(|x| strip(x, keys)).sum(),
        _ => 0,
    }
}

/// The first place where two shapes differ, as a path, for a readable failure.
pub fn first_difference(a: &Value, b: &Value) -> Option<String> {
    diff(&shape(a), &shape(b), String::new())
}

fn diff(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            // An object's shape is a list of [key, shape] pairs.
            let key = |v: &Value| match v {
                Value::Array(p) if p.len() == 2 => p[0].as_str().map(str::to_string),
                _ => None,
            };
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                let step = key(p).unwrap_or_else(|| i.to_string());
                if key(p) != key(q) {
                    return Some(format!("{path}/{step}: key {:?} vs {:?}", key(p), key(q)));
                }
                if let Some(d) = diff(p, q, format!("{path}/{step}")) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| format!("{path}: {} vs {} entries", x.len(), y.len()))
        }
        _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn structure_differences_are_found_and_measurements_are_not() {
        let a = json!({"metadata": {"timestamp": "t1", "mode": "burst"}, "results": {"8": {"mean": 1.5, "count": 3, "p": null}}});
        let same = json!({"metadata": {"timestamp": "t2", "mode": "burst"}, "results": {"8": {"mean": 2.5, "count": 4, "p": null}}});
        assert_eq!(first_difference(&a, &same), None);
        let renamed = json!({"metadata": {"timestamp": "t", "mode": "burst"}, "results": {"8": {"avg": 1.5, "count": 3, "p": null}}});
        assert!(first_difference(&a, &renamed).unwrap().contains("mean"));
        let reordered = json!({"results": {"8": {"mean": 1.5, "count": 3, "p": null}}, "metadata": {"timestamp": "t", "mode": "burst"}});
        assert!(first_difference(&a, &reordered).is_some());
        let int_for_float = json!({"metadata": {"timestamp": "t", "mode": "burst"}, "results": {"8": {"mean": 1, "count": 3, "p": null}}});
        assert!(first_difference(&a, &int_for_float).is_some());
        let null_for_number = json!({"metadata": {"timestamp": "t", "mode": "burst"}, "results": {"8": {"mean": 1.5, "count": 3, "p": 0.5}}});
        assert!(first_difference(&a, &null_for_number).is_some());
        let other_mode = json!({"metadata": {"timestamp": "t", "mode": "closed_loop"}, "results": {"8": {"mean": 1.5, "count": 3, "p": null}}});
        assert!(first_difference(&a, &other_mode).is_some());
        let extra_key = json!({"metadata": {"timestamp": "t", "mode": "burst", "x": 1}, "results": {"8": {"mean": 1.5, "count": 3, "p": null}}});
        assert!(first_difference(&a, &extra_key).is_some());
    }
}
