//! Large payloads in S3 (see [`crate::payloads`]), against DynamoDB Local
//! and moto's S3 (both started by scripts/test; moto's address in
//! `CAIRN_TEST_S3_ENDPOINT`).

use super::*;
use crate::codec::{entry_sk, exec_pk, get_n, get_s, s};
use crate::tests::{endpoint, run, sdk_config, table_name};
use cairn_core::store_suite::{fresh_id, new_execution};
use cairn_core::{Event, Payload, Store};

fn s3_endpoint() -> String {
    std::env::var("CAIRN_TEST_S3_ENDPOINT")
        .expect("CAIRN_TEST_S3_ENDPOINT is not set: run the tests with scripts/test, which starts moto (S3)")
}

/// A store on a fresh table; with `bucket`, a fresh bucket for payloads.
async fn store(bucket: bool) -> DynamoStore {
    let mut store =
        DynamoStore::from_sdk_config(&sdk_config(&endpoint()).await, &table_name("big"))
            .with_payload_sdk_config(&sdk_config(&s3_endpoint()).await);
    create_table(store.client(), store.table())
        .await
        .expect("create table");
    if bucket {
        let name = table_name("payloads").to_lowercase();
        store
            .payloads
            .client
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create bucket");
        store = store.with_payload_bucket(name);
    }
    store
}

/// The same table and bucket, nothing cached (as another process).
async fn again(store: &DynamoStore) -> DynamoStore {
    let mut other = DynamoStore::from_sdk_config(&sdk_config(&endpoint()).await, store.table())
        .with_payload_sdk_config(&sdk_config(&s3_endpoint()).await)
        .with_payload_threshold(store.payload_threshold());
    if let Some(b) = store.payload_bucket() {
        other = other.with_payload_bucket(b);
    }
    other
}

fn completed(index: u32, output: &str) -> Entry {
    Entry {
        index,
        at: Timestamp::from_millis(5),
        event: Event::Completed {
            output: Payload::new(output.as_bytes().to_vec()),
        },
    }
}

fn encoded_len(e: &Entry) -> usize {
    cairn_core::entry::encode(e).len()
}

async fn raw_entry(store: &DynamoStore, id: &ExecutionId, run: u32, index: u32) -> codec::Item {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", s(exec_pk(id)))
        .key("sk", s(entry_sk(run, index)))
        .send()
        .await
        .unwrap()
        .item
        .expect("the entry's item")
}

async fn append(store: &DynamoStore, id: &ExecutionId, entry: Entry) -> Result<(), StoreError> {
    store
        .append(
            id,
            Append {
                run: 1,
                entry,
                consume: None,
                hold_until_heard: None,
            },
        )
        .await
}

#[test]
fn a_body_over_the_threshold_goes_to_s3_and_one_at_it_stays_inline() {
    run(async {
        let store = store(true).await.with_payload_threshold(10_000);
        let id = fresh_id("threshold");
        store.create(new_execution(&id, "wf", b"1")).await.unwrap();
        // An output whose entry encodes to exactly the threshold, and one
        // byte over it.
        let base = encoded_len(&completed(1, "\"\""));
        let at = completed(1, &format!("\"{}\"", "a".repeat(10_000 - base)));
        assert_eq!(encoded_len(&at), 10_000);
        append(&store, &id, at.clone()).await.unwrap();
        let item = raw_entry(&store, &id, 1, 1).await;
        assert!(item.contains_key("body") && !item.contains_key("body_ref"));

        let id2 = fresh_id("threshold");
        store.create(new_execution(&id2, "wf", b"1")).await.unwrap();
        let over = completed(1, &format!("\"{}\"", "b".repeat(10_001 - base)));
        assert_eq!(encoded_len(&over), 10_001);
        append(&store, &id2, over.clone()).await.unwrap();
        let item = raw_entry(&store, &id2, 1, 1).await;
        assert!(
            !item.contains_key("body"),
            "no inline body over the threshold"
        );
        let reference = get_s(&item, "body_ref").unwrap();
        let sha = payloads::sha256_hex(&cairn_core::entry::encode(&over));
        assert_eq!(
            reference,
            format!(
                "s3://{}/payloads/{id2}/{sha}",
                store.payload_bucket().unwrap()
            )
        );
        assert_eq!(get_s(&item, "body_sha256").as_deref(), Some(sha.as_str()));
        assert_eq!(get_n(&item, "body_size"), Some(10_001));
        // Read back whole, by this store and by one with nothing cached.
        for s in [store.clone(), again(&store).await] {
            assert_eq!(s.load(&id).await.unwrap().journal[1], at);
            assert_eq!(s.load(&id2).await.unwrap().journal[1], over);
            assert_eq!(s.load_run(&id2, 1).await.unwrap()[1], over);
        }
        // The same append again (a retry whose reply was lost) is done,
        // not a conflict: the reference's hash is the body's.
        append(&store, &id2, over.clone()).await.unwrap();
        let other = completed(1, &format!("\"{}\"", "c".repeat(10_001 - base)));
        let err = append(&store, &id2, other).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    });
}

#[test]
fn five_megabytes_of_input_signal_result_and_output_round_trip() {
    run(async {
        let store = store(true).await;
        let id = fresh_id("five-mb");
        let mb5 = |c: char| format!("\"{}\"", c.to_string().repeat(5 << 20));
        let started = std::time::Instant::now();
        let mut new = new_execution(&id, "wf", mb5('i').as_bytes());
        new.meta.input_hash = cairn_core::input_hash(mb5('i').as_bytes());
        store.create(new.clone()).await.unwrap();
        let signal = cairn_core::InboxMessage::Signal {
            name: "big".into(),
            payload: Payload::new(mb5('s').into_bytes()),
        };
        store
            .deliver(&id, signal.clone(), Timestamp::from_millis(2))
            .await
            .unwrap();
        let result = Entry {
            index: 1,
            at: Timestamp::from_millis(3),
            event: Event::ActivityCompleted {
                seq: 1,
                name: "fetch".into(),
                input_hash: 0,
                attempts: 1,
                result: Ok(Payload::new(mb5('r').into_bytes())),
            },
        };
        append(&store, &id, result.clone()).await.unwrap();
        let output = completed(2, &mb5('o'));
        append(&store, &id, output.clone()).await.unwrap();
        // Replay: another process loads it all from the table and S3.
        let ex = again(&store).await.load(&id).await.unwrap();
        let ms = started.elapsed().as_millis();
        assert_eq!(ex.journal[0], new.started);
        assert_eq!(ex.journal[1], result);
        assert_eq!(ex.journal[2], output);
        assert_eq!(ex.inbox.len(), 1);
        assert_eq!(ex.inbox[0].message, signal);
        assert_eq!(ex.meta.status, Status::Completed);
        // The same start again is recognised (entry 0 read from S3).
        assert!(matches!(
            store.create(new).await.unwrap(),
            Created::Existing(_)
        ));
        println!("figure: large_payload_roundtrip_5mb_ms={ms} ms");
    });
}

#[test]
fn a_changed_object_is_a_clear_error_never_a_silent_payload() {
    run(async {
        let store = store(true).await;
        let id = fresh_id("corrupt");
        store.create(new_execution(&id, "wf", b"1")).await.unwrap();
        let big = completed(1, &format!("\"{}\"", "x".repeat(100_000)));
        append(&store, &id, big).await.unwrap();
        let item = raw_entry(&store, &id, 1, 1).await;
        let reference = get_s(&item, "body_ref").unwrap();
        let key = reference
            .strip_prefix(&format!("s3://{}/", store.payload_bucket().unwrap()))
            .unwrap()
            .to_string();
        let fresh = again(&store).await;
        store
            .payloads
            .client
            .put_object()
            .bucket(store.payload_bucket().unwrap())
            .key(&key)
            .body(aws_sdk_s3::primitives::ByteStream::from(
                cairn_core::entry::encode(&completed(1, "\"tampered\"")),
            ))
            .send()
            .await
            .unwrap();
        let err = fresh.load(&id).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("journal entry 1")
                && msg.contains(&reference)
                && msg.contains("does not match its reference"),
            "{msg}"
        );
        // Gone altogether: says so, and why it may be.
        store
            .payloads
            .client
            .delete_object()
            .bucket(store.payload_bucket().unwrap())
            .key(&key)
            .send()
            .await
            .unwrap();
        let err = again(&store).await.load(&id).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { .. }) && err.to_string().contains("is missing"),
            "{err}"
        );
    });
}

#[test]
fn without_a_bucket_a_big_payload_names_the_setting() {
    run(async {
        let store = store(false).await;
        assert_eq!(store.max_item_bytes(), MAX_ITEM_BYTES);
        let id = fresh_id("nobucket");
        store.create(new_execution(&id, "wf", b"1")).await.unwrap();
        // Over the threshold, under the item limit: stays in the table.
        let mid = completed(1, &format!("\"{}\"", "m".repeat(200_000)));
        append(&store, &id, mid.clone()).await.unwrap();
        assert!(raw_entry(&store, &id, 1, 1).await.contains_key("body"));
        assert_eq!(again(&store).await.load(&id).await.unwrap().journal[1], mid);
        let before = store.stats().total();
        let err = append(
            &store,
            &id,
            completed(2, &format!("\"{}\"", "x".repeat(500_000))),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
        assert!(
            err.to_string().contains("CAIRN_PAYLOAD_BUCKET")
                && err.to_string().contains("--payload-bucket"),
            "names the setting: {err}"
        );
        assert_eq!(store.stats().total(), before, "no request was sent");
    });
}

#[test]
fn over_the_hard_cap_is_refused_even_with_a_bucket() {
    run(async {
        let store = store(true).await;
        assert_eq!(store.max_item_bytes(), MAX_PAYLOAD_BYTES);
        let id = fresh_id("cap");
        store.create(new_execution(&id, "wf", b"1")).await.unwrap();
        let huge = completed(1, &format!("\"{}\"", "h".repeat(MAX_PAYLOAD_BYTES)));
        let err = append(&store, &id, huge).await.unwrap_err();
        match &err {
            StoreError::TooLarge { limit, advice, .. } => {
                assert_eq!(*limit, MAX_PAYLOAD_BYTES);
                assert!(advice.contains("hard cap"), "{err}");
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    });
}

#[test]
fn a_missing_bucket_and_a_bad_threshold_are_clear_errors() {
    run(async {
        let store = store(false)
            .await
            .with_payload_bucket("no-such-cairn-bucket");
        let id = fresh_id("nobucket");
        let err = store
            .create(new_execution(&id, "wf", "y".repeat(100_000).as_bytes()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Misconfigured(_))
                && err.to_string().contains("no-such-cairn-bucket")
                && err.to_string().contains("CAIRN_PAYLOAD_BUCKET"),
            "{err}"
        );
        for bad in ["0", "x", "400001"] {
            let err = check_payload_threshold(bad).unwrap_err();
            assert!(
                err.to_string().contains("CAIRN_PAYLOAD_THRESHOLD_BYTES"),
                "{err}"
            );
        }
        assert_eq!(check_payload_threshold("65536").unwrap(), 65_536);
    });
}
