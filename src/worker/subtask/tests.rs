//! The subtask stage machine, table-driven, with scripted units (no database).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::worker::error::code as ecode;
use crate::worker::units::testing::{Script, Scripted, scripted};

fn task(mode: &str) -> Arc<TaskConfig> {
    Arc::new(TaskConfig {
        name: "t".into(),
        task_mode: mode.into(),
        ..TaskConfig::default()
    })
}

fn subtask(mode: &str, shared: &Arc<Scripted>) -> SubTask {
    SubTask::new(
        "t",
        "w1",
        Arc::new(SourceConfig::default()),
        task(mode),
        1,
        1,
        1,
        false,
        scripted(shared.clone()),
    )
}

fn retryable() -> UnitError {
    UnitError::new(ecode::DB_DRIVER, "upstream", "connection reset").retryable(true)
}

fn fatal() -> UnitError {
    UnitError::new(ecode::DB_EXECUTE, "downstream", "duplicate entry")
}

/// Reaps until the run has ended (bounded).
async fn settle(st: &mut SubTask, now: Instant) {
    for _ in 0..2000 {
        if st.run.as_ref().is_none_or(|r| r.handle.is_finished()) {
            st.reap_at(now);
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the run did not end");
}

/// Waits until the scripted unit has started `n` runs.
async fn started(shared: &Scripted, n: usize) {
    for _ in 0..2000 {
        if shared.started().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("no run started");
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Follow(Expect, bool),
    Pause,
    Resume,
    Stop,
    /// Let the current run end and reap it.
    Settle,
    /// Reap at now + this many seconds (auto-resume clock).
    ReapAfter(u64),
}

/// (name, the units' scripts, steps with the stage expected after each).
type Case = (&'static str, Vec<Script>, Vec<(Step, Stage)>);

#[tokio::test]
async fn stage_machine_table() {
    use Stage::*;
    use Step::*;
    let cases: Vec<Case> = vec![
        (
            "expected Running starts a New subtask",
            vec![],
            vec![(Follow(Expect::Running, false), Running)],
        ),
        (
            "created paused never runs",
            vec![],
            vec![
                (Follow(Expect::Paused, false), Paused),
                (Settle, Paused),
                (Follow(Expect::Paused, false), Paused),
            ],
        ),
        (
            "pause goes through Pausing to Paused, resume runs again",
            vec![],
            vec![
                (Follow(Expect::Running, false), Running),
                (Pause, Pausing),
                (Settle, Paused),
                (Resume, Running),
            ],
        ),
        (
            "a retryable error pauses and auto-resumes after the backoff",
            vec![Script::Fail(retryable())],
            vec![
                (Follow(Expect::Running, false), Running),
                (Settle, Paused),
                (ReapAfter(0), Paused),
                (ReapAfter(2), Running),
            ],
        ),
        (
            "a fatal error pauses and stays paused",
            vec![Script::Fail(fatal())],
            vec![
                (Follow(Expect::Running, false), Running),
                (Settle, Paused),
                (ReapAfter(60), Paused),
                (Follow(Expect::Running, false), Paused),
            ],
        ),
        (
            "resume-task (a new stage revision) resumes an error-paused task",
            vec![Script::Fail(fatal())],
            vec![
                (Follow(Expect::Running, false), Running),
                (Settle, Paused),
                (Follow(Expect::Running, true), Running),
            ],
        ),
        (
            "a user pause of an error-paused task cancels its auto-resume",
            vec![Script::Fail(retryable())],
            vec![
                (Follow(Expect::Running, false), Running),
                (Settle, Paused),
                (Follow(Expect::Paused, true), Paused),
                (ReapAfter(60), Paused),
            ],
        ),
        (
            "a user pause undone by the expected stage resumes",
            vec![],
            vec![
                (Follow(Expect::Running, false), Running),
                (Follow(Expect::Paused, true), Pausing),
                (Settle, Paused),
                (Follow(Expect::Running, true), Running),
            ],
        ),
        (
            "stop goes through Stopping to Stopped",
            vec![],
            vec![
                (Follow(Expect::Running, false), Running),
                (Stop, Stopping),
                (Settle, Stopped),
            ],
        ),
        (
            "a unit that finishes by itself ends Finished",
            vec![Script::Finish],
            vec![
                (Follow(Expect::Running, false), Running),
                (Settle, Finished),
            ],
        ),
        (
            "an error while stopping still ends Stopped, with no auto-resume",
            vec![Script::Fail(retryable())],
            vec![
                (Follow(Expect::Running, false), Running),
                (Stop, Stopping),
                (Settle, Stopped),
                (ReapAfter(60), Stopped),
            ],
        ),
    ];
    for (name, scripts, steps) in cases {
        let shared = Arc::new(Scripted::default());
        for s in scripts {
            shared.push(s);
        }
        let mut st = subtask("incremental", &shared);
        let t0 = Instant::now();
        for (i, (step, want)) in steps.into_iter().enumerate() {
            match step {
                Follow(e, user) => st.follow(e, user, false).unwrap(),
                Pause => st.pause().unwrap(),
                Resume => st.resume().unwrap(),
                Stop => st.stop(),
                Settle => settle(&mut st, t0).await,
                ReapAfter(s) => {
                    st.reap_at(t0 + Duration::from_secs(s));
                }
            }
            assert_eq!(st.stage(), want, "{name}: step {i} ({step:?})");
        }
    }
}

#[tokio::test]
async fn refused_stage_changes_carry_dm_codes() {
    let shared = Arc::new(Scripted::default());
    let mut st = subtask("incremental", &shared);
    st.follow(Expect::Running, false, false).unwrap();
    assert_eq!(st.resume(), Ok(()), "resume of a running task is a no-op");
    assert_eq!(
        st.update(task("incremental"), 2).unwrap_err().code,
        code::UPDATE_NOT_PAUSED
    );
    st.stop();
    settle(&mut st, Instant::now()).await;
    assert_eq!(st.pause().unwrap_err().code, code::NOT_RUNNING);
    assert_eq!(st.resume().unwrap_err().code, code::NOT_PAUSED);
}

#[tokio::test]
async fn units_run_in_task_mode_order_and_a_resume_continues_at_the_current_unit() {
    let shared = Arc::new(Scripted::default());
    // all: Dump finishes, Load fails (retryable), then the resume must start at Load.
    shared.push(Script::Finish);
    shared.push(Script::Fail(retryable()));
    let mut st = subtask("all", &shared);
    st.follow(Expect::Running, false, false).unwrap();
    settle(&mut st, Instant::now()).await;
    assert_eq!(st.stage(), Stage::Paused);
    assert_eq!(st.unit(), UnitKind::Load);
    let err = &st.result.as_ref().unwrap().errors[0];
    assert_eq!(
        err.err_class, "load-unit",
        "the error takes the failing unit's class"
    );
    st.resume().unwrap();
    started(&shared, 3).await;
    assert_eq!(
        shared.started(),
        vec![UnitKind::Dump, UnitKind::Load, UnitKind::Load]
    );
    st.pause().unwrap();
    settle(&mut st, Instant::now()).await;
    assert_eq!(st.stage(), Stage::Paused);
    assert_eq!(st.status().unit, pb::UnitType::Load as i32);
}

#[tokio::test]
async fn a_unit_error_takes_the_class_of_its_unit() {
    let shared = Arc::new(Scripted::default());
    shared.push(Script::Fail(UnitError::new(
        ecode::UNIT_CONFIG,
        "internal",
        "bad",
    )));
    let mut st = subtask("full", &shared);
    st.follow(Expect::Running, false, false).unwrap();
    settle(&mut st, Instant::now()).await;
    let err = &st.result.as_ref().unwrap().errors[0];
    assert_eq!(err.err_class, "dump-unit");
    assert_eq!(
        shared.closed.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "the freshness probe of Load, then Dump and Load, all closed after the error"
    );
}

#[tokio::test]
async fn remove_meta_becomes_a_reset_token_tied_to_the_start() {
    let shared = Arc::new(Scripted::default());
    let st = SubTask::new(
        "t",
        "w1",
        Arc::new(SourceConfig::default()),
        task("incremental"),
        7,
        1,
        1,
        true,
        scripted(shared),
    );
    assert_eq!(st.reset_token.as_deref(), Some("start-7"));
}

#[tokio::test]
async fn dump_and_load_run_side_by_side_and_an_error_in_one_cancels_the_other() {
    let shared = Arc::new(Scripted::default());
    // Dump works until cancelled; Load fails: the dump is cancelled, the error is Load's.
    shared.push(Script::UntilCancel);
    shared.push(Script::Fail(UnitError::new(
        ecode::UNIT_CONFIG,
        "internal",
        "bad",
    )));
    let mut st = subtask("all", &shared);
    st.follow(Expect::Running, false, false).unwrap();
    settle(&mut st, Instant::now()).await;
    assert_eq!(st.stage(), Stage::Paused);
    assert_eq!(shared.started(), vec![UnitKind::Dump, UnitKind::Load]);
    assert_eq!(st.result.as_ref().unwrap().errors[0].err_class, "load-unit");
    assert_eq!(
        st.unit(),
        UnitKind::Dump,
        "the dump did not finish: a resume starts both again"
    );
}

#[tokio::test]
async fn a_first_run_starts_at_the_last_unit_with_progress() {
    // (task mode, kinds that are not fresh, the units that run first)
    let cases: [(&str, Vec<UnitKind>, Vec<UnitKind>); 4] = [
        ("all", vec![], vec![UnitKind::Dump, UnitKind::Load]),
        ("all", vec![UnitKind::Sync], vec![UnitKind::Sync]),
        ("all", vec![UnitKind::Load], vec![UnitKind::Load]),
        ("full", vec![UnitKind::Load], vec![UnitKind::Load]),
    ];
    for (mode, not_fresh, want) in cases {
        let shared = Arc::new(Scripted::default());
        *shared.not_fresh.lock().unwrap() = not_fresh.clone();
        let mut st = subtask(mode, &shared);
        st.follow(Expect::Running, false, false).unwrap();
        started(&shared, want.len()).await;
        let first = shared.started();
        let mut sorted = first.clone();
        sorted.sort_by_key(|k| *k as u8);
        assert_eq!(sorted, want, "{mode} with {not_fresh:?} not fresh");
        st.stop();
        settle(&mut st, Instant::now()).await;
    }
}

#[tokio::test]
async fn status_says_new_until_the_first_run_has_chosen_its_unit() {
    // An `all` task whose sync has a checkpoint: while the units are still being asked, a
    // status read must not say Running in Dump (the unit the run is about to skip).
    let shared = Arc::new(Scripted::default());
    *shared.not_fresh.lock().unwrap() = vec![UnitKind::Sync];
    let gate = Arc::new(tokio::sync::Notify::new());
    *shared.fresh_gate.lock().unwrap() = Some(gate.clone());
    let mut st = subtask("all", &shared);
    st.follow(Expect::Running, false, false).unwrap();
    let s = st.status();
    assert_eq!(s.stage, Stage::New as i32);
    assert_eq!(s.unit, UnitKind::Dump.to_pb() as i32);
    gate.notify_one();
    started(&shared, 1).await;
    let s = st.status();
    assert_eq!(s.stage, Stage::Running as i32);
    assert_eq!(s.unit, UnitKind::Sync.to_pb() as i32);
    st.stop();
    settle(&mut st, Instant::now()).await;
}
