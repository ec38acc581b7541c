//! Malformed invocation payloads, property-tested: `events::decode` answers
//! any JSON (arbitrary values, and real event shapes with values swapped,
//! removed or added) with a request or a `CRN401` error, never a panic.
//! Bounded (2000 cases per property; `CAIRN_FUZZ_CASES` for more); failing
//! seeds persist in `tests/corpus/events.proptest-regressions`.

use base64::Engine as _;
use cairn_core::ErrorCode;
use cairn_lambda::events::{Decoded, decode, http_response};
#[path = "../../core/tests/support/fuzzing.rs"]
mod fuzzing;

use proptest::prelude::*;
use serde_json::{Value, json};

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
            "requestContext": {"timeEpoch": 1_764_547_200_000_i64, "http": {"method": "POST", "path": "/"}, "requestId": "r1"},
            "body": body, "isBase64Encoded": false,
        }),
        json!({
            "version": "2.0", "rawPath": "/", "rawQueryString": "",
            "requestContext": {"timeEpoch": 1_764_547_200_000_i64, "http": {"method": "POST", "path": "/"}, "requestId": "r1"},
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

fn mutated_event() -> impl Strategy<Value = Value> {
    fuzzing::mutated(prop::sample::select(real_events()), WORDS)
}

/// Decodes; an API request that is refused is a CRN401 (or, oversize,
/// CRN204) answer, rendered the way a Function URL caller gets it; any
/// other refusal is a CRN401 function error.
fn check(v: Value) -> Result<(), TestCaseError> {
    match decode(v) {
        Ok(
            Decoded::Api(Ok(_)) | Decoded::Http(Ok(_)) | Decoded::Internal(_) | Decoded::Stream(_),
        ) => {}
        Ok(Decoded::Api(Err(e)) | Decoded::Http(Err(e))) => {
            prop_assert!(
                matches!(e.code, ErrorCode::BadInput | ErrorCode::TooLarge),
                "{e:?}"
            );
            let r = http_response(Err(e.clone()));
            prop_assert_eq!(&r["statusCode"], &json!(e.status));
            prop_assert!((400..500).contains(&e.status), "{e:?}");
        }
        Err(e) => {
            prop_assert!(e.error_type.starts_with("CRN401"), "{e:?}");
        }
    }
    Ok(())
}

#[test]
fn the_real_shapes_decode() {
    for v in real_events() {
        match decode(v.clone()) {
            Ok(Decoded::Api(Err(e)) | Decoded::Http(Err(e))) => panic!("{v}: {e}"),
            Ok(_) => {}
            Err(e) => panic!("{v}: {e}"),
        }
    }
}

proptest! {
    #![proptest_config(fuzzing::config("tests/corpus/events.proptest-regressions"))]

    #[test]
    fn arbitrary_json_is_a_request_or_a_bad_request(v in fuzzing::json(WORDS)) {
        check(v)?;
    }

    #[test]
    fn mutated_events_are_requests_or_bad_requests(v in mutated_event()) {
        check(v)?;
    }

    #[test]
    fn function_url_bodies_are_requests_or_bad_requests(
        body in prop_oneof![
            fuzzing::json(WORDS).prop_map(|v| v.to_string()),
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
            "version": "2.0", "rawPath": "/", "rawQueryString": "",
            "requestContext": {"timeEpoch": 0, "http": {"method": "POST", "path": "/"}},
            "body": body, "isBase64Encoded": encoded,
        }))?;
    }
}
