//! A component changed under a journal: parked, never corrupted.

use crate::support::*;

#[test]
fn replaying_against_a_changed_component_parks_at_the_divergent_entry() {
    let c = Cairn::new();
    // v1: echo(1), then wait for `continue`.
    c.run(&[
        "start", TESTKIT, "-w", "ordered", "-i", "null", "--id", "nd",
    ])
    .ok();
    let before = c.history("nd");
    assert_eq!(before.len(), 2);

    // v2 asks for echo(2) first: journal entry 1 does not match.
    let r = c.run(&["resume", "nd", "--component", TESTKIT_CHANGED, "--no-wait"]);
    assert_eq!(r.code, 3, "parked exits 3: {r:?}");
    assert!(
        r.stderr.contains("CRN100") && r.stderr.contains("journal entry 1"),
        "{r:?}"
    );
    let st = c.status("nd");
    assert_eq!(st["status"], "parked");
    assert_eq!(st["parked"]["index"], 1);
    assert_eq!(st["parked"]["code"], "CRN100");
    assert_eq!(c.history("nd"), before, "the journal is untouched");
    let human = c.run(&["history", "nd"]).ok();
    assert!(
        human.stdout.contains("replay diverged at entry #1"),
        "{human:?}"
    );

    // A parked execution stays parked until someone decides.
    c.run(&["signal", "nd", "continue", "{}", "--no-advance"])
        .ok();
    assert_eq!(c.run(&["resume", "nd", "--no-wait"]).code, 3);

    // Resuming with the original component un-parks it and it finishes.
    c.run(&["resume", "nd", "--component", TESTKIT, "--no-wait"])
        .ok();
    let st = c.status("nd");
    assert_eq!(st["status"], "completed", "{st}");
    assert_eq!(st["output"], "first=1 second=2");
}
