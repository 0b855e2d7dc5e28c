//! DM v1's `refresh-worker-tasks` and the status of every worker (`update-master-config`'s
//! answer), as [`Scheduler`] methods.
//!
//! DM v1's master kept a task → workers map in memory and rebuilt it from the workers'
//! QueryStatus answers. dm-rs's master routes by its durable bindings (source → worker) and
//! subtasks, so the refresh is: one push round at once (every worker gets its desired state;
//! offline workers' sources are bound again), then each worker's QueryStatus, the task →
//! workers map rebuilt from those answers (logged) and compared with what the master expects
//! of each worker ([`judge`], pure). Called by the gRPC handler in `server.rs`; it changes no
//! durable state itself.

use std::collections::{BTreeMap, BTreeSet};

use super::scheduler::Scheduler;
use crate::pb;

/// DM v1's message for a worker that answered with `result: false` and no message.
pub const FAILED_RESULT: &str = "got response but with failed result";

/// The worker's answer when no source is bound to it (a free worker: not an error here).
const NO_SOURCE_CODE: &str = "[code=40070]";

/// One line of refresh-worker-tasks' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRefresh {
    pub worker: String,
    /// The worker's error, [`FAILED_RESULT`], what it runs differently from what the master
    /// expects, or empty when it is fine.
    pub msg: String,
}

/// What the master expects one worker to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// The source bound to it.
    pub source: Option<String>,
    /// The tasks with a subtask on that source.
    pub tasks: BTreeSet<String>,
}

/// The tasks a worker reports (subtasks whose status is not a "not started" message).
pub fn reported_tasks(r: &pb::QueryStatusResponse) -> BTreeSet<String> {
    r.sub_task_status
        .iter()
        .filter(|s| !s.name.is_empty())
        .filter(|s| !matches!(s.status, Some(pb::sub_task_status::Status::Msg(_))))
        .map(|s| s.name.clone())
        .collect()
}

/// One worker's line: DM v1's rule (the answer's message when there is one, else
/// [`FAILED_RESULT`] for `result: false`), except that a free worker saying it handles no
/// source is fine, then what the worker runs that the master does not expect or the reverse.
pub fn judge(expected: &Expected, answer: &Result<pb::QueryStatusResponse, String>) -> String {
    let r = match answer {
        Err(why) => return why.clone(),
        Ok(r) => r,
    };
    if !r.result {
        if expected.source.is_none() && r.msg.contains(NO_SOURCE_CODE) {
            return String::new();
        }
        return if r.msg.is_empty() {
            FAILED_RESULT.to_string()
        } else {
            r.msg.clone()
        };
    }
    let source = r
        .source_status
        .as_ref()
        .map(|s| s.source.clone())
        .filter(|s| !s.is_empty());
    if source != expected.source {
        return format!(
            "reports source {}, but the master binds it to {}",
            source.as_deref().unwrap_or("(none)"),
            expected
                .source
                .as_deref()
                .map(|s| format!("source {s}"))
                .unwrap_or_else(|| "no source".into())
        );
    }
    let got = reported_tasks(r);
    let missing: Vec<&String> = expected.tasks.difference(&got).collect();
    let extra: Vec<&String> = got.difference(&expected.tasks).collect();
    let mut out = Vec::new();
    if !missing.is_empty() {
        out.push(format!(
            "does not run task(s) {missing:?} the master expects"
        ));
    }
    if !extra.is_empty() {
        out.push(format!("runs task(s) {extra:?} the master does not expect"));
    }
    out.join("; ")
}

impl Scheduler {
    /// What the master expects of each registered worker, in name order.
    fn expected_per_worker(&self) -> Vec<(String, Expected)> {
        let st = self.lock();
        st.workers
            .keys()
            .map(|w| {
                let source = st.source_of(w).map(str::to_string);
                let tasks = source
                    .as_ref()
                    .map(|s| {
                        st.subtasks
                            .keys()
                            .filter(|(_, src)| src == s)
                            .map(|(t, _)| t.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                (w.clone(), Expected { source, tasks })
            })
            .collect()
    }

    /// refresh-worker-tasks: push every worker its desired state now, then ask each for its
    /// status; one line per registered worker, in name order.
    pub async fn refresh_worker_tasks(&self) -> Vec<WorkerRefresh> {
        self.round().await;
        let expected = self.expected_per_worker();
        let answers = futures_util::future::join_all(
            expected
                .iter()
                .map(|(w, _)| self.query_worker_or_why(w, "")),
        )
        .await;
        let mut workers_of_task: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut out = Vec::new();
        for ((worker, exp), answer) in expected.into_iter().zip(answers) {
            let msg = judge(&exp, &answer);
            match &answer {
                Ok(r) => {
                    let tasks = reported_tasks(r);
                    tracing::debug!(worker = %worker, result = r.result, source = ?r.source_status.as_ref().map(|s| &s.source), tasks = ?tasks, expected = ?exp, "refresh-worker-tasks: the worker's report");
                    if r.result {
                        for t in tasks {
                            workers_of_task.entry(t).or_default().insert(worker.clone());
                        }
                    }
                }
                Err(why) => {
                    tracing::debug!(worker = %worker, "refresh-worker-tasks: the worker's report: {why}")
                }
            }
            if !msg.is_empty() {
                tracing::warn!(worker = %worker, "refresh-worker-tasks: {msg}");
            }
            out.push(WorkerRefresh { worker, msg });
        }
        tracing::info!(workers_of_task = ?workers_of_task, "refresh-worker-tasks: workers of each task, as they report them");
        out
    }

    /// Every registered worker's status (all its subtasks), in name order, as DM v1's
    /// update-master-config returns them; a worker that cannot be asked gets `result: false`
    /// with the reason. Each answer names its worker.
    pub async fn all_worker_status(&self) -> Vec<pb::QueryStatusResponse> {
        let names: Vec<String> = self.lock().workers.keys().cloned().collect();
        let answers =
            futures_util::future::join_all(names.iter().map(|w| self.query_worker_or_why(w, "")))
                .await;
        names
            .into_iter()
            .zip(answers)
            .map(|(w, a)| {
                let mut r = a.unwrap_or_else(|why| pb::QueryStatusResponse {
                    result: false,
                    msg: why,
                    source_status: None,
                    sub_task_status: vec![],
                });
                let s = r.source_status.get_or_insert_with(Default::default);
                if s.worker.is_empty() {
                    s.worker = w;
                }
                r
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(source: Option<&str>, tasks: &[&str]) -> Result<pb::QueryStatusResponse, String> {
        Ok(pb::QueryStatusResponse {
            result: true,
            msg: String::new(),
            source_status: source.map(|s| pb::SourceStatus {
                source: s.into(),
                ..Default::default()
            }),
            sub_task_status: tasks
                .iter()
                .map(|t| pb::SubTaskStatus {
                    name: t.to_string(),
                    stage: pb::Stage::Running as i32,
                    ..Default::default()
                })
                .collect(),
        })
    }

    fn failed(msg: &str) -> Result<pb::QueryStatusResponse, String> {
        Ok(pb::QueryStatusResponse {
            result: false,
            msg: msg.into(),
            ..Default::default()
        })
    }

    fn exp(source: Option<&str>, tasks: &[&str]) -> Expected {
        Expected {
            source: source.map(str::to_string),
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn each_worker_is_judged_by_dm_v1_rules_and_the_master_expectation() {
        let no_source = "[code=40070] no mysql source is being handled in the worker";
        let cases: Vec<(Expected, Result<pb::QueryStatusResponse, String>, &str)> = vec![
            (exp(Some("s1"), &["t1"]), answer(Some("s1"), &["t1"]), ""),
            (exp(Some("s1"), &[]), answer(Some("s1"), &[]), ""),
            (exp(None, &[]), failed(no_source), ""),
            (exp(Some("s1"), &["t1"]), failed(no_source), no_source),
            (exp(Some("s1"), &[]), failed(""), FAILED_RESULT),
            (
                exp(Some("s1"), &[]),
                Err("dm-worker w did not answer in time".into()),
                "dm-worker w did not answer in time",
            ),
            (
                exp(Some("s1"), &[]),
                answer(Some("s2"), &[]),
                "reports source s2, but the master binds it to source s1",
            ),
            (
                exp(None, &[]),
                answer(Some("s2"), &[]),
                "reports source s2, but the master binds it to no source",
            ),
            (
                exp(Some("s1"), &["t1", "t2"]),
                answer(Some("s1"), &["t2", "t3"]),
                "does not run task(s) [\"t1\"] the master expects; runs task(s) [\"t3\"] the master does not expect",
            ),
        ];
        for (i, (e, a, want)) in cases.into_iter().enumerate() {
            assert_eq!(judge(&e, &a), want, "case {i}");
        }
    }

    #[test]
    fn a_not_started_message_is_not_a_running_task() {
        let mut r = answer(Some("s1"), &["t1"]).unwrap();
        r.sub_task_status.push(pb::SubTaskStatus {
            name: "t2".into(),
            status: Some(pb::sub_task_status::Status::Msg(
                "no sub task with name t2 has started".into(),
            )),
            ..Default::default()
        });
        assert_eq!(reported_tasks(&r), BTreeSet::from(["t1".to_string()]));
    }
}
