//! Malformed invocation payloads, property-tested: `events::decode` answers
//! any JSON (arbitrary values, and real event shapes with values swapped,
//! removed or added) with a request or a `CRN401` error, never a panic.
//! Bounded (2000 cases per property; `CAIRN_FUZZ_CASES` for more); failing
//! seeds persist in `tests/corpus/events.proptest-regressions`.

use base64::Engine as _;
use cairn_lambda::events::{Decoded, decode, http_response};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Value, json};

fn config() -> ProptestConfig {
    let cases = std::env::var("CAIRN_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/corpus/events.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Event shapes the function receives.
fn real_events() -> Vec<Value> {
    let body = json!({"action": "signal", "id": "s1", "name": "go", "payload": 1}).to_string();
    vec![
        json!({"action": "start", "workflow": "swap", "id": "s1", "input": {"a": "alice"}}),
        json!({"action": "start", "workflow": "swap"}),
        json!({"action": "signal", "id": "s1", "name": "go", "payload": [1, 2]}),
        json!({"action": "cancel", "id": "s1", "reason": "no"}),
        json!({"action": "status", "id": "s1"}),
        json!({"action": "query", "id": "s1", "name": "count", "args": null}),
        json!({"action": "wake", "id": "s1", "at": 1_795_818_816_067u64}),
        json!({"action": "sweep"}),
        json!({"Records": [{
            "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/cairn/stream/2026-11-27T00:00:00.000",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_700_000_000,
                "Keys": {"pk": {"S": "exec#s1"}, "sk": {"S": "in#01J000"}},
                "NewImage": {"pk": {"S": "exec#s1"}, "sk": {"S": "in#01J000"}, "kind": {"S": "signal"}},
                "SequenceNumber": "111", "SizeBytes": 26, "StreamViewType": "NEW_AND_OLD_IMAGES"
            }
        }]}),
        json!({
            "version": "2.0", "rawPath": "/", "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": "POST", "path": "/"}, "requestId": "r1"},
            "body": body, "isBase64Encoded": false,
        }),
        json!({
            "version": "2.0", "rawPath": "/", "rawQueryString": "",
            "requestContext": {"http": {"method": "POST", "path": "/"}, "requestId": "r1"},
            "body": base64::engine::general_purpose::STANDARD.encode(&body), "isBase64Encoded": true,
        }),
    ]
}

const WORDS: &[&str] = &[
    "action",
    "start",
    "signal",
    "cancel",
    "status",
    "query",
    "wake",
    "sweep",
    "workflow",
    "id",
    "input",
    "component",
    "name",
    "payload",
    "reason",
    "args",
    "at",
    "Records",
    "dynamodb",
    "Keys",
    "pk",
    "S",
    "N",
    "exec#",
    "exec#a b",
    "SequenceNumber",
    "eventName",
    "requestContext",
    "rawPath",
    "body",
    "isBase64Encoded",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(String::from),
        1 => ".{0,8}",
    ]
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

fn mutated_event() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(real_events()),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, key(), json()), 1..4),
    )
        .prop_map(|(mut v, edits)| {
            for (at, op, k, new) in edits {
                mutate(&mut v, at, op, k, new);
            }
            v
        })
}

/// Decodes, and renders an error the way a Function URL caller gets it.
fn check(v: Value) -> Result<(), TestCaseError> {
    match decode(v) {
        Ok(Decoded::Request(_) | Decoded::Http(_) | Decoded::Stream(_)) => {}
        Err(e) => {
            prop_assert!(e.error_type.starts_with("CRN401"), "{e:?}");
            let r = http_response(Err(e));
            prop_assert_eq!(&r["statusCode"], &json!(400));
        }
    }
    Ok(())
}

#[test]
fn the_real_shapes_decode() {
    for v in real_events() {
        assert!(decode(v.clone()).is_ok(), "{v}");
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_json_is_a_request_or_a_bad_request(v in json()) {
        check(v)?;
    }

    #[test]
    fn mutated_events_are_requests_or_bad_requests(v in mutated_event()) {
        check(v)?;
    }

    #[test]
    fn function_url_bodies_are_requests_or_bad_requests(
        body in prop_oneof![
            json().prop_map(|v| v.to_string()),
            mutated_event().prop_map(|v| v.to_string()),
            ".{0,40}",
        ],
        encoded in any::<bool>(),
        garbage in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let body = if encoded {
            let mut bytes = body.into_bytes();
            if garbage.len() > 15 {
                bytes = garbage;
            }
            base64::engine::general_purpose::STANDARD.encode(bytes)
        } else {
            body
        };
        check(json!({
            "rawPath": "/", "requestContext": {}, "body": body, "isBase64Encoded": encoded,
        }))?;
    }
}
