//! Walks ../shared/dm-corpus: every valid task and source file loads; every invalid task file fails
//! with the DM error code its name starts with. Files added later are covered without code changes.

use std::path::{Path, PathBuf};

use dm_rs::config;

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/dm-corpus");
    assert!(
        dir.is_dir(),
        "the DM corpus is missing at {} (it sits beside the project root)",
        dir.display()
    );
    dir
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {}", dir.display());
    files
}

fn assert_all_load<T>(sub: &str, load: fn(&Path) -> Result<T, config::ConfigError>) {
    let files = yaml_files(&corpus().join(sub));
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| load(f).err().map(|e| e.to_string()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn every_valid_task_file_loads() {
    assert_all_load("tasks-valid", config::load_task_file);
}

#[test]
fn every_valid_source_file_loads() {
    assert_all_load("sources-valid", config::load_source_file);
}

#[test]
fn every_invalid_task_file_fails_with_its_code() {
    let mut failures = Vec::new();
    let files = yaml_files(&corpus().join("invalid"));
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let want: u32 = name
            .split('-')
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("{name} does not start with a DM error code"));
        match config::load_task_file(f) {
            Ok(_) => failures.push(format!("{name}: loaded, expected code {want}")),
            Err(e) if e.code != want => failures.push(format!("{name}: expected {want}, got {e}")),
            Err(e) => {
                let shown = e.to_string();
                assert!(shown.starts_with(&f.display().to_string()), "{shown}");
                assert!(shown.contains(&format!("[code={want}]")), "{shown}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} wrong:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn normalised_valid_tasks_round_trip() {
    // The masked YAML a task normalises to must load again to the same config (passwords aside).
    for f in yaml_files(&corpus().join("tasks-valid")) {
        let loaded = config::load_task_file(&f).unwrap();
        let yaml = loaded.config.to_yaml_masked();
        assert!(!yaml.contains("Up8156jArvIPymkVC"), "{}", f.display());
        let again = config::parse_task(yaml.as_bytes()).unwrap_or_else(|e| {
            panic!(
                "{}: normalised form does not load: {e}\n{yaml}",
                f.display()
            )
        });
        let mut expected = loaded.config.clone();
        expected.target_database.as_mut().unwrap().password = dm_rs::password::MASK.into();
        assert_eq!(again.config, expected, "{}", f.display());
    }
}
