//! Replays every file the fuzz targets keep (`fuzz/seeds`, `fuzz/corpus`, `fuzz/regressions`)
//! through the same checks the targets run, without libFuzzer, so `make test` re-checks on the
//! stable toolchain everything fuzzing ever explored or found.
//!
//! Hand-written seeds state what they expect by name: `ok-*` must be accepted, `bad-*` refused
//! with a reason; other names (fuzzer-made, `raw-*`) only must not panic or break a rule. Every
//! failing file is reported, not just the first.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use hookline_fuzzing::{Target, Verdict};

fn fuzz_dir() -> PathBuf {
    Path::new(
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("../../fuzz")
}

/// The files under `fuzz/<kind>/<target>/`, sorted; none when the directory does not exist.
fn files(kind: &str, target: Target) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target.name());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// What the file's name promises: `Some(true)` accepted, `Some(false)` refused, `None` nothing.
fn expectation(path: &Path) -> Option<bool> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with("ok-") {
        Some(true)
    } else if name.starts_with("bad-") {
        Some(false)
    } else {
        None
    }
}

/// Runs one file; `Err` describes how it failed.
fn replay(target: Target, path: &Path) -> Result<Verdict, String> {
    let data = std::fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
    let verdict = match catch_unwind(AssertUnwindSafe(|| target.run(&data))) {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(broken)) => return Err(format!("broke a rule: {broken}")),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(format!("panicked: {message}"));
        }
    };
    match (expectation(path), &verdict) {
        (Some(true), Verdict::Refused(reason)) => {
            Err(format!("expected accepted, refused: {reason}"))
        }
        (Some(false), Verdict::Accepted) => Err("expected refused, accepted".into()),
        (_, Verdict::Refused(reason)) if reason.trim().is_empty() => {
            Err("refused without a reason".into())
        }
        _ => Ok(verdict),
    }
}

#[test]
fn every_kept_input_replays_without_panic_and_as_its_name_expects() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for target in Target::ALL {
        let seeds = files("seeds", target);
        let accepted = seeds
            .iter()
            .filter(|p| expectation(p) == Some(true))
            .count();
        let refused = seeds
            .iter()
            .filter(|p| expectation(p) == Some(false))
            .count();
        if accepted < 3 || refused < 3 {
            failures.push(format!(
                "{}: needs at least 3 ok- and 3 bad- seeds, has {accepted} and {refused}",
                target.name()
            ));
        }
        let kept = [seeds, files("corpus", target), files("regressions", target)].concat();
        for path in kept {
            replayed += 1;
            if let Err(why) = replay(target, &path) {
                failures.push(format!("{}: {why}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        replayed > 0,
        "no input found under {}",
        fuzz_dir().display()
    );
}

#[test]
fn every_target_has_a_fuzz_binary_and_a_seed_directory() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml"))
        .expect("fuzz/Cargo.toml is readable");
    let bins: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|name| *name != "hookline-fuzz")
        .collect();
    let names: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(
        bins, names,
        "fuzz/Cargo.toml's [[bin]]s and Target::ALL differ"
    );
    for name in names {
        let source = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(source.is_file(), "{} is missing", source.display());
        assert!(
            fuzz_dir().join("seeds").join(name).is_dir(),
            "no seeds for {name}"
        );
    }
}
