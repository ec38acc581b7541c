//! Generators shared by the property-tested fuzz suites (`runtime/core/tests/
//! fuzz.rs`, `runtime/lambda/tests/events_fuzz.rs`, which includes this file
//! by path): bounded configuration, arbitrary JSON seeded with a format's
//! own words, and structural mutation of real documents.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::Value;

/// 2000 cases (`CAIRN_FUZZ_CASES` for more); failing seeds persist in
/// `regressions` and are replayed first.
pub fn config(regressions: &'static str) -> ProptestConfig {
    let cases = std::env::var("CAIRN_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..ProptestConfig::default()
    }
}

/// Any JSON value, a few levels deep; strings and keys often `words` (field
/// names and kinds of the format), so structured inputs get deep into the
/// decoder.
pub fn json(words: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(words).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(words), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// An object key: mostly one of `words`.
pub fn key(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(words).prop_map(String::from),
        1 => ".{0,8}",
    ]
}

/// Documents from `seeds` with one to three values replaced, keys removed,
/// or keys and elements added somewhere.
pub fn mutated(
    seeds: impl Strategy<Value = Value>,
    words: &'static [&'static str],
) -> impl Strategy<Value = Value> {
    (
        seeds,
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                0u8..3,
                key(words),
                json(words),
            ),
            1..4,
        ),
    )
        .prop_map(|(mut v, edits)| {
            for (at, op, k, new) in edits {
                mutate(&mut v, at, op, k, new);
            }
            v
        })
}

/// Applies one edit to the node `at` picks (in a depth-first walk): replace
/// it, remove a key, or add a key or an element.
fn mutate(v: &mut Value, at: prop::sample::Index, op: u8, key: String, new: Value) {
    fn count(v: &Value) -> usize {
        1 + match v {
            Value::Array(a) => a.iter().map(count).sum(),
            Value::Object(o) => o.values().map(count).sum(),
            _ => 0,
        }
    }
    fn nth<'a>(v: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
        if *n == 0 {
            return Some(v);
        }
        *n -= 1;
        match v {
            Value::Array(a) => a.iter_mut().find_map(|x| nth(x, n)),
            Value::Object(o) => o.values_mut().find_map(|x| nth(x, n)),
            _ => None,
        }
    }
    let mut n = at.index(count(v));
    let Some(node) = nth(v, &mut n) else { return };
    match (op, node) {
        (0, node) => *node = new,
        (1, Value::Object(o)) => {
            let k = o.keys().nth(key.len() % o.len().max(1)).cloned();
            if let Some(k) = k {
                o.remove(&k);
            }
        }
        (_, Value::Object(o)) => {
            o.insert(key, new);
        }
        (_, Value::Array(a)) => a.push(new),
        (_, node) => *node = new,
    }
}
