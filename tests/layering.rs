//! The crate's dependency picture has no cycle: the master does not use the reconciler (both
//! use the config model), and the reconciler does not use dmctl (dmctl calls the reconciler).
//! Checked on the source text, so a new `use` that breaks the picture fails here.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        panic!("cannot read {}", dir.display());
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Lines of the files under `src/<module>` (and `src/<module>.rs`) that mention `forbidden`;
/// with `code_only`, comment lines (doc links) do not count.
fn offenders(module: &str, forbidden: &str, code_only: bool) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    if src.join(module).is_dir() {
        rust_files(&src.join(module), &mut files);
    }
    let single = src.join(format!("{module}.rs"));
    if single.exists() {
        files.push(single);
    }
    assert!(!files.is_empty(), "no source files for {module}");
    files
        .into_iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(&f).ok()?;
            let lines: Vec<String> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| {
                    l.contains(forbidden) && !(code_only && l.trim_start().starts_with("//"))
                })
                .map(|(i, _)| format!("{}:{}", f.display(), i + 1))
                .collect();
            (!lines.is_empty()).then(|| lines.join(", "))
        })
        .collect()
}

#[test]
fn master_does_not_use_the_reconciler() {
    let bad = offenders("master", "crate::reconcile", false);
    assert!(bad.is_empty(), "src/master uses crate::reconcile: {bad:?}");
}

#[test]
fn reconciler_does_not_use_dmctl() {
    let bad = offenders("reconcile", "crate::ctl", false);
    assert!(bad.is_empty(), "src/reconcile uses crate::ctl: {bad:?}");
}

#[test]
fn shared_layers_use_neither_binary_side() {
    // The config model and the gRPC plumbing sit below master, worker, reconcile and ctl.
    for module in ["config", "rpc"] {
        for upper in [
            "crate::master",
            "crate::reconcile",
            "crate::ctl",
            "crate::worker",
        ] {
            let bad = offenders(module, upper, true);
            assert!(bad.is_empty(), "src/{module} uses {upper}: {bad:?}");
        }
    }
}
