//! The worker's level-triggered assignment and its fencing, with scripted units.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::worker::units::testing::{Scripted, scripted};

const SOURCE: &str =
    "source-id: mysql-01\nfrom:\n  host: 127.0.0.1\n  port: 3306\n  user: root\n  password: \"\"\n";
const TASK: &str = "name: t1\ntask-mode: incremental\ntarget-database:\n  host: 127.0.0.1\n  port: 3307\n  user: root\n  password: \"\"\nmysql-instances:\n  - source-id: mysql-01\n    meta:\n      binlog-name: mysql-bin.000001\n      binlog-pos: 4\n    block-allow-list: ba\nblock-allow-list:\n  ba:\n    do-dbs: [\"db\"]\n";

fn req(expect: Stage, start_id: u64, stage_rev: u64) -> AssignRequest {
    AssignRequest {
        worker_name: "w1".into(),
        source_id: "mysql-01".into(),
        relay: None,
        source_yaml: SOURCE.into(),
        subtasks: vec![dmrs::SubTaskSpec {
            shard_ops: vec![],
            opt_ops: vec![],
            name: "t1".into(),
            task_yaml: TASK.into(),
            expect: expect as i32,
            start_id,
            remove_meta: false,
            config_rev: 1,
            stage_rev,
        }],
        secret_key: vec![],
    }
}

fn stage_of(w: &Worker) -> Option<Stage> {
    let inner = w.lock();
    inner.subtasks.get("t1").map(|s| s.stage())
}

/// Ticks at `at` until `cond` holds (bounded; the scripted units end within milliseconds).
async fn tick_until(w: &Worker, at: Instant, cond: impl Fn(&Worker) -> bool) {
    for _ in 0..2000 {
        w.tick_at(at);
        if cond(w) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn assignment_starts_pauses_and_stops_subtasks() {
    let shared = Arc::new(Scripted::default());
    let w = Worker::with_factory("w1", scripted(shared.clone()));
    let t0 = Instant::now();
    let r = w.assign_at(req(Stage::Running, 1, 1), t0);
    assert!(r.result, "{}", r.msg);
    assert_eq!(stage_of(&w), Some(Stage::Running));
    w.assign_at(req(Stage::Paused, 1, 2), t0);
    tick_until(&w, t0, |w| stage_of(w) == Some(Stage::Paused)).await;
    w.assign_at(req(Stage::Running, 1, 3), t0);
    assert_eq!(stage_of(&w), Some(Stage::Running));
    // A new start id replaces the subtask: the new one waits for the old run to end.
    w.assign_at(req(Stage::Running, 2, 3), t0);
    tick_until(&w, t0, |w| {
        stage_of(w) == Some(Stage::Running) && w.lock().retiring.is_empty()
    })
    .await;
    assert_eq!(w.lock().subtasks.get("t1").map(|s| s.start_id), Some(2));
    // Not wanted any more: stopped and dropped.
    let mut none = req(Stage::Running, 2, 3);
    none.subtasks.clear();
    w.assign_at(none, t0);
    tick_until(&w, t0, |w| {
        w.lock().subtasks.is_empty() && w.lock().retiring.is_empty()
    })
    .await;
}

#[tokio::test]
async fn fencing_table() {
    // (silence after the last push, fenced?)
    let cases = [
        (Duration::from_secs(0), false),
        (FENCE_AFTER - Duration::from_millis(1), false),
        (FENCE_AFTER, false),
        (FENCE_AFTER + Duration::from_millis(1), true),
        (FENCE_AFTER * 3, true),
    ];
    for (silence, fenced) in cases {
        let shared = Arc::new(Scripted::default());
        let w = Worker::with_factory("w1", scripted(shared.clone()));
        let t0 = Instant::now();
        w.assign_at(req(Stage::Running, 1, 1), t0);
        w.tick_at(t0 + silence);
        assert_eq!(
            w.source().is_none(),
            fenced,
            "silence {silence:?}: bound source"
        );
        assert_eq!(
            stage_of(&w).is_none(),
            fenced,
            "silence {silence:?}: subtask kept"
        );
        if fenced {
            // The fenced run ends; a push afterwards starts a fresh subtask.
            tick_until(&w, t0 + silence, |w| w.lock().retiring.is_empty()).await;
            let later = t0 + silence + Duration::from_secs(1);
            w.assign_at(req(Stage::Running, 1, 1), later);
            tick_until(&w, later, |_| shared.started().len() == 2).await;
            assert_eq!(
                stage_of(&w),
                Some(Stage::Running),
                "one run before, one after the fence"
            );
        }
    }
}

#[tokio::test]
async fn query_status_of_a_free_worker_names_no_source() {
    let w = Worker::with_factory("w1", scripted(Arc::new(Scripted::default())));
    let r = w.query_status("").await;
    assert!(!r.result);
    assert!(r.msg.contains("40070"), "{}", r.msg);
}

/// A status read takes a run that has just ended: a finished unit shows Finished without
/// waiting for the worker's next tick (none runs here).
#[tokio::test]
async fn a_status_read_shows_a_run_that_just_finished() {
    let shared = Arc::new(Scripted::default());
    shared.push(crate::worker::units::testing::Script::Finish);
    let w = Worker::with_factory("w1", scripted(shared.clone()));
    let r = w.assign_at(req(Stage::Running, 1, 1), Instant::now());
    assert!(r.result, "{}", r.msg);
    for _ in 0..2000 {
        let st = w.status_now("t1");
        if st.sub_task_status.first().map(|s| s.stage) == Some(Stage::Finished as i32) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the finished run never showed in the status");
}
