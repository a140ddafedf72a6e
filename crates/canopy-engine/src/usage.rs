//! Usage records (`{input_tokens, output_tokens, cost_usd, …}`): what steps consumed, added
//! up over attempts and over a run's steps.

use serde_json::{Map, Number, Value};

/// Adds `more` into `total`: numbers add, other values replace, objects merge key by key. A
/// null `total` becomes a copy of `more`.
pub fn add(total: &mut Value, more: &Value) {
    match (total, more) {
        (Value::Object(t), Value::Object(m)) => {
            for (k, v) in m {
                match t.get_mut(k) {
                    Some(slot) => add(slot, v),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t @ Value::Number(_), Value::Number(m)) => {
            if let Value::Number(n) = t {
                *t = sum(n, m);
            }
        }
        (t, m) => *t = m.clone(),
    }
}

/// Integers stay integers (token counts); anything else adds as floating point (cost).
fn sum(a: &Number, b: &Number) -> Value {
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Value::from(x.saturating_add(y));
    }
    let total = a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0);
    Number::from_f64(total).map_or(Value::Null, Value::Number)
}

/// The sum of several usage records; `None` when none has any.
pub fn total<'a>(records: impl IntoIterator<Item = &'a Value>) -> Option<Value> {
    let mut t = Value::Object(Map::new());
    let mut any = false;
    for r in records {
        add(&mut t, r);
        any = true;
    }
    any.then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_add_and_text_replaces() {
        let mut t = Value::Null;
        add(
            &mut t,
            &json!({"input_tokens": 3, "cost_usd": 0.5, "model": "a"}),
        );
        add(
            &mut t,
            &json!({"input_tokens": 4, "cost_usd": 0.25, "model": "b", "output_tokens": 1}),
        );
        assert_eq!(
            t,
            json!({"input_tokens": 7, "cost_usd": 0.75, "model": "b", "output_tokens": 1})
        );
    }

    #[test]
    fn total_of_nothing_is_none() {
        assert_eq!(total([]), None);
        let a = json!({"input_tokens": 1});
        assert_eq!(total([&a, &a]), Some(json!({"input_tokens": 2})));
    }
}
