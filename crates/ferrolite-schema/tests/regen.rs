//! `src/generated.rs` must be exactly what `tools/regen-schema.sh` produces
//! from `schema/tflite.fbs`, so nobody hand-edits it and schema edits are not
//! forgotten. Skipped (with a message) when planus-cli is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn planus_available() -> bool {
    // A successful run, not just a spawn: under qemu-user a missing program
    // still "starts" (the emulator does) and then fails.
    let on_path = Command::new("planus").arg("--help").output().is_ok_and(|o| o.status.success());
    let in_cargo_home =
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/planus").is_file()).unwrap_or(false);
    on_path || in_cargo_home
}

#[test]
fn generated_code_matches_schema() {
    if !planus_available() {
        eprintln!(
            "SKIPPED: `planus` not found on PATH or in ~/.cargo/bin; \
             install with `cargo install planus-cli --version 1.3.0 --locked` to run this check"
        );
        return;
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = crate_dir.join("../../tools/regen-schema.sh");
    let out: PathBuf = std::env::temp_dir().join(format!("ferrolite-schema-regen-{}.rs", std::process::id()));

    // Same script, same steps (serde strip + rustfmt) as the committed file.
    let status = Command::new("bash").arg(&script).arg(&out).status().expect("failed to run tools/regen-schema.sh");
    assert!(status.success(), "tools/regen-schema.sh failed: {status}");

    let fresh = std::fs::read(&out).expect("regenerated file missing");
    let _ = std::fs::remove_file(&out);
    let committed = std::fs::read(crate_dir.join("src/generated.rs")).unwrap();
    assert!(
        fresh == committed,
        "src/generated.rs is stale or hand-edited: run tools/regen-schema.sh and commit the result"
    );
}
