//! `query-status TASK --watch`: a task's progress per source, refreshed every second (or every
//! `--interval`) until the task ends (every subtask Finished or Stopped, or one Paused by an error) or Ctrl-C.
//!
//! On a terminal each source gets a live progress bar (indicatif): unit, stage, percent (Dump:
//! completed chunks; Load: finished / total bytes; Sync: 100 % once synced, else how far the
//! syncer is behind the master's binlog), and the rate. When stdout is not a terminal it prints
//! one plain line per source each time that source's line changes, with no escape codes.
//!
//! The pure part — [`progress`] (a query-status answer → one [`SourceProgress`] per source),
//! [`plain_line`], [`Lines`] (only the changed lines) and [`end_of`] — is table-tested; [`run`]
//! is the loop (one `QueryStatus` per interval, each with the RPC timeout). It only reads: it
//! never changes the master. A task the master does not know gives query-status' own answer.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use super::jsonpb;
use super::master::{FAIL, OK, Target};
use crate::pb;
use crate::pb::sub_task_status::Status;

/// The shortest `--interval`.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// One source's part of a task, as the watch shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceProgress {
    pub source: String,
    /// DM's unit name (`Dump`, `Load`, `Sync`), or "" before the subtask reports one.
    pub unit: String,
    /// DM's stage name (`Running`, `Paused`, `Finished`, …).
    pub stage: String,
    /// 0–100, when the unit has a measurable end (Sync: 100 once synced).
    pub percent: Option<f64>,
    /// What the percent is made of, e.g. `12.0 MiB / 40.0 MiB` or `3 / 10 tables`.
    pub detail: String,
    /// The speed, e.g. `1.5 MiB/s` (empty when unknown).
    pub rate: String,
    /// The first error of a subtask paused by one.
    pub error: Option<String>,
}

/// Why a watch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Every subtask finished (a `full` task done).
    Finished,
    /// Every subtask stopped, or the task left the master (stop-task).
    Stopped,
    /// A subtask is paused by an error: `source: error`.
    Failed(String),
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if !n.is_finite() || n < 0.0 {
        return "?".into();
    }
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `"30.52 %"` → 30.52 (DM's progress strings).
fn parse_percent(s: &str) -> Option<f64> {
    let v: f64 = s.trim().trim_end_matches('%').trim().parse().ok()?;
    v.is_finite().then(|| v.clamp(0.0, 100.0))
}

/// `"(mysql-bin.000003, 1274)"` → (`mysql-bin`, 3, 1274).
fn parse_position(s: &str) -> Option<(String, u64, u64)> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (file, pos) = inner.split_once(',')?;
    let (base, seq) = file.trim().rsplit_once('.')?;
    Some((
        base.to_string(),
        seq.parse().ok()?,
        pos.trim().parse().ok()?,
    ))
}

/// How far the syncer is behind the master: `0 B`, `1234 B`, `2 binlog files`.
fn sync_lag(master: &str, syncer: &str) -> Option<String> {
    let (mb, mf, mp) = parse_position(master)?;
    let (sb, sf, sp) = parse_position(syncer)?;
    if mb != sb {
        return None;
    }
    Some(match mf.cmp(&sf) {
        std::cmp::Ordering::Equal => {
            format!("{} behind", human_bytes(mp.saturating_sub(sp) as f64))
        }
        std::cmp::Ordering::Greater => {
            let n = mf - sf;
            format!("{n} binlog file{} behind", if n == 1 { "" } else { "s" })
        }
        std::cmp::Ordering::Less => "0 B behind".into(),
    })
}

fn rate(bps: i64) -> String {
    if bps > 0 {
        format!("{}/s", human_bytes(bps as f64))
    } else {
        String::new()
    }
}

fn stage_name(v: i32) -> String {
    pb::Stage::try_from(v)
        .ok()
        .filter(|s| *s != pb::Stage::InvalidStage)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_default()
}

fn unit_name(v: i32) -> String {
    pb::UnitType::try_from(v)
        .ok()
        .filter(|u| *u != pb::UnitType::InvalidUnit)
        .map(|u| u.as_str_name().to_string())
        .unwrap_or_default()
}

fn first_error(r: &Option<pb::ProcessResult>) -> Option<String> {
    let e = r.as_ref()?.errors.first()?;
    Some(if e.err_code != 0 {
        format!("[code={}] {}", e.err_code, e.message)
    } else {
        e.message.clone()
    })
}

/// One subtask's figures.
fn of_subtask(source: &str, st: &pb::SubTaskStatus) -> SourceProgress {
    let mut p = SourceProgress {
        source: source.to_string(),
        unit: unit_name(st.unit),
        stage: stage_name(st.stage),
        percent: None,
        detail: String::new(),
        rate: String::new(),
        error: first_error(&st.result),
    };
    let finished = st.stage == pb::Stage::Finished as i32;
    match &st.status {
        Some(Status::Dump(d)) => {
            p.percent = parse_percent(&d.progress).or_else(|| {
                (d.total_tables > 0)
                    .then(|| (d.completed_tables / d.total_tables as f64 * 100.0).clamp(0.0, 100.0))
            });
            p.detail = format!(
                "{} / {} tables, {} rows, {}",
                d.completed_tables,
                d.total_tables,
                d.finished_rows,
                human_bytes(d.finished_bytes)
            );
            p.rate = rate(d.bps);
        }
        Some(Status::Load(l)) => {
            p.percent = if l.total_bytes > 0 {
                Some((l.finished_bytes as f64 / l.total_bytes as f64 * 100.0).clamp(0.0, 100.0))
            } else {
                parse_percent(&l.progress)
            };
            p.detail = format!(
                "{} / {}",
                human_bytes(l.finished_bytes as f64),
                human_bytes(l.total_bytes as f64)
            );
            p.rate = rate(l.bps);
        }
        Some(Status::Sync(s)) => {
            if s.synced {
                p.percent = Some(100.0);
                p.detail = "synced".into();
            } else {
                p.detail = sync_lag(&s.master_binlog, &s.syncer_binlog).unwrap_or_else(|| {
                    format!("master {} syncer {}", s.master_binlog, s.syncer_binlog)
                });
                if s.seconds_behind_master > 0 {
                    p.detail
                        .push_str(&format!(" ({} s)", s.seconds_behind_master));
                }
            }
            if s.recent_tps > 0 {
                p.rate = format!("{} tps", s.recent_tps);
            }
        }
        Some(Status::Msg(m)) => p.detail = m.clone(),
        Some(Status::Check(_)) | None => {}
    }
    if finished && p.percent.is_none() && p.unit != "Sync" {
        p.percent = Some(100.0);
    }
    p
}

/// The task's subtasks in a query-status answer, one per source in source order (a source
/// whose worker did not answer shows its message).
pub fn progress(resp: &pb::QueryStatusListResponse, task: &str) -> Vec<SourceProgress> {
    let mut out = Vec::new();
    for src in &resp.sources {
        let source = src
            .source_status
            .as_ref()
            .map(|s| s.source.clone())
            .unwrap_or_default();
        if !src.result {
            out.push(SourceProgress {
                source,
                unit: String::new(),
                stage: String::new(),
                percent: None,
                detail: src.msg.clone(),
                rate: String::new(),
                error: None,
            });
            continue;
        }
        for st in src.sub_task_status.iter().filter(|s| s.name == task) {
            out.push(of_subtask(&source, st));
        }
    }
    out.sort_by(|a, b| a.source.cmp(&b.source));
    out
}

/// `unit stage percent detail rate [error]`, without the source (the bar's prefix).
pub fn describe(p: &SourceProgress) -> String {
    let mut parts: Vec<String> = Vec::new();
    for s in [&p.unit, &p.stage] {
        if !s.is_empty() {
            parts.push(s.clone());
        }
    }
    if let Some(v) = p.percent {
        parts.push(format!("{v:.2} %"));
    }
    for s in [&p.detail, &p.rate] {
        if !s.is_empty() {
            parts.push(s.clone());
        }
    }
    if let Some(e) = &p.error {
        parts.push(format!("error: {e}"));
    }
    parts.join("  ")
}

/// One plain line: `source: Load Running  42.10 %  4.2 MiB / 10.0 MiB  1.0 MiB/s`.
pub fn plain_line(p: &SourceProgress) -> String {
    format!("{}: {}", p.source, describe(p))
}

/// The plain output: remembers each source's last line and gives only the changed ones.
#[derive(Debug, Default)]
pub struct Lines {
    last: BTreeMap<String, String>,
}

impl Lines {
    /// The lines to print for this status (sources whose line changed, in source order).
    pub fn feed(&mut self, list: &[SourceProgress]) -> Vec<String> {
        let mut out = Vec::new();
        for p in list {
            let line = plain_line(p);
            if self.last.get(&p.source) != Some(&line) {
                self.last.insert(p.source.clone(), line.clone());
                out.push(line);
            }
        }
        out
    }
}

/// The plain output of a whole sequence of statuses (what a non-terminal watch prints, end
/// line aside).
pub fn plain_lines(statuses: &[Vec<SourceProgress>]) -> Vec<String> {
    let mut lines = Lines::default();
    statuses.iter().flat_map(|s| lines.feed(s)).collect()
}

/// Whether the watch is over: any subtask paused by an error ends it as failed; otherwise it
/// ends when every subtask is Finished or Stopped (Finished when at least one finished).
pub fn end_of(list: &[SourceProgress]) -> Option<End> {
    if let Some(p) = list
        .iter()
        .find(|p| p.stage == "Paused" && p.error.is_some())
    {
        return Some(End::Failed(format!(
            "{}: {}",
            p.source,
            p.error.as_deref().unwrap_or("")
        )));
    }
    if list.is_empty()
        || !list
            .iter()
            .all(|p| p.stage == "Finished" || p.stage == "Stopped")
    {
        return None;
    }
    Some(if list.iter().any(|p| p.stage == "Finished") {
        End::Finished
    } else {
        End::Stopped
    })
}

/// The last line of a watch.
pub fn end_line(task: &str, end: &End) -> String {
    match end {
        End::Finished => format!("task {task}: Finished"),
        End::Stopped => format!("task {task}: Stopped"),
        End::Failed(e) => format!(
            "task {task}: Paused by an error on {e} (query-status {task} shows it whole; fix the cause, then resume-task {task})"
        ),
    }
}

/// How a watch shows progress.
enum Screen {
    Plain(Lines),
    Bars {
        multi: indicatif::MultiProgress,
        bars: BTreeMap<String, indicatif::ProgressBar>,
    },
}

impl Screen {
    fn new(terminal: bool) -> Screen {
        if terminal {
            Screen::Bars {
                multi: indicatif::MultiProgress::new(),
                bars: BTreeMap::new(),
            }
        } else {
            Screen::Plain(Lines::default())
        }
    }

    fn show(&mut self, list: &[SourceProgress]) {
        match self {
            Screen::Plain(lines) => {
                for l in lines.feed(list) {
                    println!("{l}");
                }
            }
            Screen::Bars { multi, bars } => {
                let width = list.iter().map(|p| p.source.len()).max().unwrap_or(0);
                for p in list {
                    let bar = bars.entry(p.source.clone()).or_insert_with(|| {
                        let b = multi.add(indicatif::ProgressBar::new(10_000));
                        let style = indicatif::ProgressStyle::with_template(
                            "{prefix:.bold} [{bar:30.cyan/blue}] {msg}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> ");
                        b.set_style(style);
                        b
                    });
                    bar.set_prefix(format!("{:<width$}", p.source));
                    bar.set_position(p.percent.map_or(0, |v| (v * 100.0).round() as u64));
                    bar.set_message(describe(p));
                }
            }
        }
    }

    fn say(&self, line: &str) {
        match self {
            Screen::Plain(_) => println!("{line}"),
            Screen::Bars { multi, .. } => {
                if multi.println(line).is_err() {
                    println!("{line}");
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Screen::Bars { bars, .. } = self {
            for b in bars.values() {
                b.abandon();
            }
        }
    }
}

/// Runs `query-status TASK --watch` against the master; the exit code: [`OK`] when the task
/// finished or stopped (or on Ctrl-C), [`FAIL`] when it is paused by an error or the first
/// status cannot be read (printed as query-status prints it).
pub fn run(task: &str, sources: &[String], interval: Duration, t: &Target) -> u8 {
    let addr = match t.require_addr() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("can not start the async runtime: {e}");
            return FAIL;
        }
    };
    rt.block_on(watch(&addr, task, sources, interval, t.timeout))
}

async fn watch(
    addr: &str,
    task: &str,
    sources: &[String],
    interval: Duration,
    timeout: Duration,
) -> u8 {
    let channel = match crate::rpc::connect(addr, crate::rpc::CONNECT_TIMEOUT, timeout).await {
        Ok(c) => c,
        Err(e) => {
            super::master::print_client_error(&super::client::ClientError::Connect {
                addr: addr.to_string(),
                why: e.why().to_string(),
            });
            return FAIL;
        }
    };
    let client = pb::master_client::MasterClient::new(channel);
    let req = pb::QueryStatusListRequest {
        name: task.to_string(),
        sources: sources.to_vec(),
    };
    let mut screen: Option<Screen> = None;
    let mut last_error = String::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let answer = tokio::time::timeout(timeout, client.clone().query_status(req.clone())).await;
        let failure = match answer {
            Err(_) => Some(format!("master {addr} did not answer within {timeout:?}")),
            Ok(Err(status)) => Some(format!(
                "master {addr} returned an error: {}",
                status.message()
            )),
            Ok(Ok(resp)) => {
                let resp = resp.into_inner();
                match &mut screen {
                    // First answer: a refusal is printed as query-status prints it.
                    None if !resp.result => {
                        println!("{}", jsonpb::print_response(&resp));
                        return FAIL;
                    }
                    // The task left the master (stop-task) while watched.
                    Some(s) if !resp.result => {
                        s.finish();
                        s.say(&end_line(task, &End::Stopped));
                        return OK;
                    }
                    _ => {}
                }
                let s = screen.get_or_insert_with(|| Screen::new(std::io::stdout().is_terminal()));
                let list = progress(&resp, task);
                s.show(&list);
                last_error.clear();
                if let Some(end) = end_of(&list) {
                    s.finish();
                    s.say(&end_line(task, &end));
                    return if matches!(end, End::Failed(_)) {
                        FAIL
                    } else {
                        OK
                    };
                }
                None
            }
        };
        if let Some(e) = failure {
            if screen.is_none() {
                eprintln!("{e}");
                return FAIL;
            }
            if e != last_error {
                eprintln!("{e} (still watching)");
                last_error = e;
            }
        }
        tokio::select! {
            _ = &mut ctrl_c => {
                if let Some(s) = &mut screen {
                    s.finish();
                }
                return OK;
            }
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(stage: pb::Stage, unit: pb::UnitType, status: Status) -> pb::SubTaskStatus {
        pb::SubTaskStatus {
            name: "t".into(),
            stage: stage as i32,
            unit: unit as i32,
            status: Some(status),
            ..Default::default()
        }
    }

    fn answer(subs: Vec<(&str, pb::SubTaskStatus)>) -> pb::QueryStatusListResponse {
        pb::QueryStatusListResponse {
            result: true,
            msg: String::new(),
            sources: subs
                .into_iter()
                .map(|(s, st)| pb::QueryStatusResponse {
                    result: true,
                    msg: String::new(),
                    source_status: Some(pb::SourceStatus {
                        source: s.into(),
                        ..Default::default()
                    }),
                    sub_task_status: vec![st],
                })
                .collect(),
        }
    }

    fn dump(progress: &str, done: f64, total: i64, bps: i64) -> Status {
        Status::Dump(pb::DumpStatus {
            total_tables: total,
            completed_tables: done,
            finished_bytes: 2048.0 * done,
            finished_rows: 10.0 * done,
            estimate_total_rows: 100.0,
            bps,
            progress: progress.into(),
        })
    }

    fn load(finished: i64, total: i64, bps: i64) -> Status {
        Status::Load(pb::LoadStatus {
            finished_bytes: finished,
            total_bytes: total,
            progress: String::new(),
            meta_binlog: String::new(),
            meta_binlog_gtid: String::new(),
            bps,
        })
    }

    fn sync(synced: bool, master: &str, syncer: &str, tps: i64) -> Status {
        Status::Sync(pb::SyncStatus {
            master_binlog: master.into(),
            syncer_binlog: syncer.into(),
            synced,
            recent_tps: tps,
            ..Default::default()
        })
    }

    use pb::Stage::{Finished, Paused, Running};
    use pb::UnitType::{Dump, Load, Sync};

    /// A `full` task on two sources: dump, load side by side, then finished; the plain output
    /// prints each source's line when it changes, and the end is seen.
    #[test]
    fn plain_lines_of_a_scripted_full_task() {
        let statuses: Vec<pb::QueryStatusListResponse> = vec![
            answer(vec![
                ("s2", sub(Running, Dump, dump("", 0.0, 0, 0))),
                ("s1", sub(Running, Dump, dump("10.00 %", 1.0, 10, 4096))),
            ]),
            // nothing changed
            answer(vec![
                ("s1", sub(Running, Dump, dump("10.00 %", 1.0, 10, 4096))),
                ("s2", sub(Running, Dump, dump("", 0.0, 0, 0))),
            ]),
            answer(vec![
                ("s1", sub(Running, Load, load(4 << 20, 10 << 20, 1 << 20))),
                ("s2", sub(Running, Dump, dump("", 0.0, 0, 0))),
            ]),
            answer(vec![
                ("s1", sub(Finished, Load, load(10 << 20, 10 << 20, 0))),
                ("s2", sub(Finished, Load, load(0, 0, 0))),
            ]),
        ];
        let list: Vec<Vec<SourceProgress>> = statuses.iter().map(|r| progress(r, "t")).collect();
        assert_eq!(
            plain_lines(&list),
            vec![
                "s1: Dump  Running  10.00 %  1 / 10 tables, 10 rows, 2.0 KiB  4.0 KiB/s",
                "s2: Dump  Running  0 / 0 tables, 0 rows, 0 B",
                "s1: Load  Running  40.00 %  4.0 MiB / 10.0 MiB  1.0 MiB/s",
                "s1: Load  Finished  100.00 %  10.0 MiB / 10.0 MiB",
                "s2: Load  Finished  100.00 %  0 B / 0 B",
            ]
        );
        let ends: Vec<Option<End>> = list.iter().map(|l| end_of(l)).collect();
        assert_eq!(ends, vec![None, None, None, Some(End::Finished)]);
        for lines in plain_lines(&list) {
            assert!(!lines.contains('\u{1b}'), "escape code in {lines:?}");
        }
    }

    #[test]
    fn sync_shows_synced_or_lag() {
        let cases: Vec<(Status, Option<f64>, &str)> = vec![
            (
                sync(true, "(bin.000002, 500)", "(bin.000002, 500)", 12),
                Some(100.0),
                "s1: Sync  Running  100.00 %  synced  12 tps",
            ),
            (
                sync(false, "(bin.000002, 5000)", "(bin.000002, 1904)", 0),
                None,
                "s1: Sync  Running  3.0 KiB behind",
            ),
            (
                sync(false, "(bin.000004, 5000)", "(bin.000002, 1904)", 0),
                None,
                "s1: Sync  Running  2 binlog files behind",
            ),
            (
                sync(false, "", "", 0),
                None,
                "s1: Sync  Running  master  syncer ",
            ),
        ];
        for (st, pct, want) in cases {
            let p = progress(&answer(vec![("s1", sub(Running, Sync, st))]), "t");
            assert_eq!(p[0].percent, pct);
            assert_eq!(plain_line(&p[0]), want);
        }
    }

    #[test]
    fn the_watch_ends_on_finished_stopped_or_an_error() {
        let p = |stage: &str, err: Option<&str>| SourceProgress {
            source: "s".into(),
            unit: "Load".into(),
            stage: stage.into(),
            percent: None,
            detail: String::new(),
            rate: String::new(),
            error: err.map(str::to_string),
        };
        let cases: Vec<(Vec<SourceProgress>, Option<End>)> = vec![
            (vec![], None),
            (vec![p("Running", None)], None),
            (vec![p("Paused", None)], None),
            (vec![p("Finished", None), p("Running", None)], None),
            (
                vec![p("Finished", None), p("Finished", None)],
                Some(End::Finished),
            ),
            (
                vec![p("Stopped", None), p("Finished", None)],
                Some(End::Finished),
            ),
            (vec![p("Stopped", None)], Some(End::Stopped)),
            (
                vec![p("Running", None), p("Paused", Some("[code=34002] boom"))],
                Some(End::Failed("s: [code=34002] boom".into())),
            ),
        ];
        for (list, want) in cases {
            assert_eq!(end_of(&list), want, "{list:?}");
        }
        assert!(end_line("t", &End::Failed("s: x".into())).contains("resume-task t"));
    }

    #[test]
    fn a_paused_subtask_shows_its_error_and_an_unanswered_source_its_message() {
        let mut st = sub(Paused, Load, load(1, 2, 0));
        st.result = Some(pb::ProcessResult {
            is_canceled: false,
            errors: vec![pb::ProcessError {
                err_code: 34002,
                message: "bad file".into(),
                ..Default::default()
            }],
            detail: vec![],
        });
        let mut resp = answer(vec![("s1", st)]);
        resp.sources.push(pb::QueryStatusResponse {
            result: false,
            msg: "dm-worker w2 bound to source s2 does not answer".into(),
            source_status: Some(pb::SourceStatus {
                source: "s2".into(),
                ..Default::default()
            }),
            sub_task_status: vec![],
        });
        let lines: Vec<String> = progress(&resp, "t").iter().map(plain_line).collect();
        assert_eq!(
            lines,
            vec![
                "s1: Load  Paused  50.00 %  1 B / 2 B  error: [code=34002] bad file",
                "s2: dm-worker w2 bound to source s2 does not answer",
            ]
        );
    }

    #[test]
    fn sizes_and_positions_parse() {
        assert_eq!(human_bytes(0.0), "0 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(human_bytes(f64::NAN), "?");
        assert_eq!(parse_percent("30.52 %"), Some(30.52));
        assert_eq!(parse_percent("100 %"), Some(100.0));
        assert_eq!(parse_percent(""), None);
        assert_eq!(
            parse_position("(mysql-bin.000003, 1274)"),
            Some(("mysql-bin".into(), 3, 1274))
        );
        assert_eq!(parse_position("mysql-bin.000003:1274"), None);
    }
}
