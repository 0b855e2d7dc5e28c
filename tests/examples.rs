//! The example task directory stays valid.

use std::path::Path;

#[test]
fn example_task_and_source_load_with_env_passwords() {
    // SAFETY: only this test binary reads these variables.
    unsafe {
        std::env::set_var("DM_TARGET_PASSWORD", "");
        std::env::set_var("DM_SOURCE_PASSWORD", "");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tasks");
    let task = dm_rs::config::load_task_file(&dir.join("shop.yaml")).unwrap();
    assert_eq!(task.config.name, "shop");
    assert!(task.warnings.is_empty(), "{:?}", task.warnings);
    let src = dm_rs::config::load_source_file(&dir.join("source-mariadb-01.yaml")).unwrap();
    assert_eq!(src.config.source_id, "mariadb-01");
    assert_eq!(
        task.config.instances().next().unwrap().source_id,
        src.config.source_id
    );
}
