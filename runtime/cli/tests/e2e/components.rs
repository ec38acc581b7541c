//! `cairn components list` and `cairn components gc`: upgrades that strand
//! nothing (issue 11), on SQLite and on DynamoDB.

use crate::support::*;
use cairn_test_artifacts::TESTKIT_LOGGED;
use serde_json::Value;

/// Declares one test per store for a body taking an `Env`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Env::sqlite()) } )*
        }
        mod dynamodb {
            $( #[test] fn $name() { super::$name(super::Env::dynamo()) } )*
        }
    };
}

on_both_stores!(gc_removes_only_what_nothing_needs);

fn hash_of(e: &Env, wasm: &str) -> String {
    e.run(&["inspect", wasm, "--json"]).ok().json()["hash"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The JSON entry of component `hash`, if listed.
fn entry<'a>(report: &'a Value, hash: &str) -> Option<&'a Value> {
    report["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["hash"] == hash)
}

/// The human line of component `hash`.
fn line<'a>(out: &'a str, hash: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&hash[..12]))
        .unwrap_or_else(|| panic!("no line for {}: {out}", &hash[..12]))
}

fn listed(e: &Env) -> Vec<String> {
    let v = e.run(&["components", "list", "--json"]).ok().json();
    let mut hashes: Vec<String> = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["hash"].as_str().unwrap().to_string())
        .collect();
    hashes.sort();
    hashes
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn gc_removes_only_what_nothing_needs(e: Env) {
    let (v1, v2, unused) = (
        hash_of(&e, TESTKIT),
        hash_of(&e, TESTKIT_CHANGED),
        hash_of(&e, TESTKIT_LOGGED),
    );
    // v1 registered; an execution on it waits for a signal.
    e.run(&["register", TESTKIT]).ok();
    e.run(&["start", "-w", "collect", "-i", "1", "--id", "pinned"])
        .ok();
    let st = e.status("pinned");
    assert_eq!(
        (st["status"].as_str(), st["component"].as_str()),
        (Some("waiting"), Some(v1.as_str())),
        "{st}"
    );
    // v2 registered over it: every workflow now points at v2.
    e.run(&["register", TESTKIT_CHANGED]).ok();
    // A candidate checked and never promoted: stored, used by nothing.
    e.run(&["replay-check", TESTKIT_LOGGED, "-w", "ordered"])
        .ok();

    let list = e.run(&["components", "list", "--json"]).ok().json();
    assert_eq!(
        listed(&e),
        sorted(vec![v1.clone(), v2.clone(), unused.clone()]),
        "{list}"
    );
    let size = std::fs::metadata(TESTKIT).unwrap().len();
    assert_eq!(entry(&list, &v1).unwrap()["size"], size, "{list}");
    let human = e.run(&["components", "list"]).ok().stdout;
    assert!(line(&human, &unused).contains("unused"), "{human}");
    assert!(human.contains("3 components"), "{human}");

    // Dry run: v1 kept (pinned), v2 kept (pointed at), the candidate
    // removable; nothing deleted.
    let dry = e.run(&["components", "gc"]).ok().stdout;
    let l1 = line(&dry, &v1);
    assert!(
        l1.contains("pinned 1") && l1.contains("keep: pinned by 1 unfinished execution"),
        "{dry}"
    );
    assert!(
        l1.contains("workflows -"),
        "no workflow points at v1: {dry}"
    );
    let l2 = line(&dry, &v2);
    assert!(
        l2.contains("pinned 0") && l2.contains("keep:") && l2.contains("workflows point at it"),
        "{dry}"
    );
    assert!(
        line(&dry, &unused).contains("remove: no workflow points at it"),
        "{dry}"
    );
    assert!(
        dry.contains("2 kept") && dry.contains("1 removable"),
        "{dry}"
    );
    assert!(
        dry.contains("dry run: nothing deleted") && dry.contains("cairn components gc --apply"),
        "{dry}"
    );
    assert!(dry.contains("finished executions pin nothing"), "{dry}");
    let dry = e.run(&["components", "gc", "--json"]).ok().json();
    assert_eq!(dry["applied"], false);
    assert_eq!(entry(&dry, &v1).unwrap()["action"], "keep", "{dry}");
    assert_eq!(entry(&dry, &v1).unwrap()["pinned"], 1, "{dry}");
    assert_eq!(entry(&dry, &v2).unwrap()["action"], "keep", "{dry}");
    let pointing = entry(&dry, &v2).unwrap()["workflows"].as_array().unwrap();
    assert!(pointing.contains(&"collect".into()), "{dry}");
    assert_eq!(
        entry(&dry, &v1).unwrap()["workflows"],
        serde_json::json!([])
    );
    assert_eq!(entry(&dry, &unused).unwrap()["action"], "remove", "{dry}");
    assert_eq!(dry["missing"], serde_json::json!([]), "{dry}");
    assert_eq!(listed(&e).len(), 3, "a dry run deletes nothing");

    // Applied: only the unused candidate goes.
    let applied = e
        .run(&["components", "gc", "--apply", "--json"])
        .ok()
        .json();
    assert_eq!(applied["applied"], true);
    assert_eq!(applied["removed"], 1, "{applied}");
    assert_eq!(
        entry(&applied, &unused).unwrap()["action"],
        "removed",
        "{applied}"
    );
    assert_eq!(listed(&e), sorted(vec![v1.clone(), v2.clone()]));

    // The pinned execution still completes on v1, read from the store
    // (a fresh process each time: nothing is cached in memory).
    e.run(&["signal", "pinned", "go", r#"{"n": 1}"#]).ok();
    let st = e.status("pinned");
    assert_eq!(st["status"], "completed", "{st}");
    assert_eq!(st["component"], v1.as_str());
    assert_eq!(st["output"], serde_json::json!([{"n": 1}]), "{st}");

    // Finished, it pins nothing, and no workflow points at v1: it goes.
    let applied = e.run(&["components", "gc", "--apply"]).ok().stdout;
    assert!(line(&applied, &v1).contains("removed:"), "{applied}");
    assert!(line(&applied, &v2).contains("keep:"), "{applied}");
    assert!(
        applied.contains("1 kept") && applied.contains("1 removed"),
        "{applied}"
    );
    assert_eq!(listed(&e), vec![v2.clone()]);
    let again = e.run(&["components", "gc"]).ok().stdout;
    assert!(again.contains("dry run: nothing to remove"), "{again}");

    // Its journal stays readable without its component, and a replay check
    // replays it against the candidate, not against v1.
    assert_eq!(e.status("pinned")["status"], "completed");
    assert_eq!(e.history("pinned").last().unwrap()["kind"], "completed");
    let check = e
        .run(&["replay-check", TESTKIT_LOGGED, "-w", "collect"])
        .ok();
    assert!(
        check
            .stdout
            .contains("compatible: every execution replays the same"),
        "{check:?}"
    );
    // New executions start on v2.
    e.run(&["start", "-w", "collect", "-i", "1", "--id", "after"])
        .ok();
    assert_eq!(e.status("after")["component"], v2.as_str());
}
