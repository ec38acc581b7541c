//! `cairn precompile`: `.cwasm` files for this machine and for the arm64
//! Lambda function, named as the runtime looks for them, and checked.

use crate::support::*;

#[test]
fn precompiles_for_this_machine_and_for_aarch64() {
    let c = Cairn::new();
    let out = c.path().join("layer");
    let out_s = out.display().to_string();
    let hash = cairn_host::component_hash(&std::fs::read(SWAP_SAGA).unwrap());

    let arm = c
        .run(&[
            "precompile",
            "--target",
            "aarch64-unknown-linux-gnu",
            "--out",
            &out_s,
            SWAP_SAGA,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(arm["accepted"], true, "{arm}");
    assert_eq!(arm["target"], "aarch64-unknown-linux-gnu");
    let tag = cairn_host::engine_tag(
        &cairn_host::SandboxConfig::default(),
        "aarch64-unknown-linux-gnu",
    )
    .unwrap();
    let file = out.join(cairn_host::precompiled_file_name(&hash, &tag));
    assert_eq!(arm["cwasm"], file.display().to_string());
    assert!(file.is_file());

    let here = c.run(&["precompile", "--out", &out_s, SWAP_SAGA]).ok();
    assert!(
        here.stdout.contains("loaded by this machine's sandbox"),
        "{here:?}"
    );
    // Two files side by side, one per triple.
    let cwasm = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "cwasm")
        .count();
    assert_eq!(cwasm, 2);
}

#[test]
fn refuses_what_is_not_a_component_and_unknown_targets() {
    let c = Cairn::new();
    let text = c.path().join("not.wasm");
    std::fs::write(&text, "hello").unwrap();
    let r = c.run(&["precompile", "--out", "o", &text.display().to_string()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("CRN300"), "{r:?}");
    let r = c.run(&["precompile", "--target", "nope", "--out", "o", SWAP_SAGA]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nope"), "{r:?}");
}
