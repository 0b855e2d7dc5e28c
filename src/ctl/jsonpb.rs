//! dmctl's JSON output, byte for byte as DM prints it.
//!
//! DM prints RPC responses with gogo `jsonpb.Marshaler{EmitDefaults: true, Indent: "    "}` and its
//! own summaries with `encoding/json.MarshalIndent(v, "", "    ")`. This module holds an ordered
//! JSON value ([`J`]), the two printers ([`jsonpb`], [`go_json`]) and the conversion of every
//! `pb` response dmctl prints ([`ToJson`]): proto field names, keys in field-number order, enums
//! as names, 64-bit integers as strings, bytes as base64 (`null` when empty), unset messages
//! `null`, and only the set member of a oneof. Called by the dmctl commands; it never does I/O
//! and never alters a value (a masked password stays masked).

use base64::Engine;

use crate::pb;

/// An ordered JSON value: objects keep their keys in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    /// A JSON number (int32 fields).
    Int(i64),
    /// A `double` field: a JSON number as Go's `encoding/json` writes it (`3`, `0.5`,
    /// `1e+21`); NaN and the infinities as jsonpb's strings `"NaN"`, `"Infinity"`.
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl J {
    /// A string value.
    pub fn s(v: &str) -> J {
        J::Str(v.to_string())
    }

    /// A 64-bit integer as jsonpb prints it: a JSON string.
    pub fn i64(v: i64) -> J {
        J::Str(v.to_string())
    }

    /// An unsigned 64-bit integer as jsonpb prints it: a JSON string.
    pub fn u64(v: u64) -> J {
        J::Str(v.to_string())
    }

    /// Repeated strings.
    pub fn strs(v: &[String]) -> J {
        J::Arr(v.iter().map(|s| J::s(s)).collect())
    }

    /// A bytes field: base64, or `null` when empty (Go's nil slice).
    pub fn bytes(v: &[u8]) -> J {
        if v.is_empty() {
            J::Null
        } else {
            J::Str(base64::engine::general_purpose::STANDARD.encode(v))
        }
    }
}

/// Writes `s` as a JSON string the way Go's `encoding/json` does (HTML-safe: `<`, `>`, `&`
/// and U+2028/U+2029 escaped).
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float64 as Go's `encoding/json` prints it (jsonpb defers to it for doubles): the
/// shortest text that reads back the same, in plain notation for 1e-6 <= |f| < 1e21 and in
/// exponent notation (`1e+21`, `1.5e-7`) outside; NaN and infinities as jsonpb's strings.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "\"NaN\"".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        }
        .into();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        // Rust writes `1e21` / `1.5e-7`; Go writes `1e+21` / `1.5e-7`.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{f}")
    }
}

const INDENT: &str = "    ";

/// Prints like gogo jsonpb with `Indent: "    "`: an empty array is `[` newline `]`, an empty
/// message `{` two newlines `}`.
pub fn jsonpb(v: &J) -> String {
    let mut out = String::new();
    match v {
        J::Obj(fields) => pb_object(&mut out, fields, ""),
        other => pb_value(&mut out, other, ""),
    }
    out
}

fn pb_value(out: &mut String, v: &J, indent: &str) {
    match v {
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                out.push_str(indent);
                out.push_str(INDENT);
                out.push_str(INDENT);
                pb_value(out, item, &format!("{indent}{INDENT}"));
            }
            out.push('\n');
            out.push_str(indent);
            out.push_str(INDENT);
            out.push(']');
        }
        J::Obj(fields) => {
            // a nested message is indented one level deeper than the value's position
            pb_object(out, fields, &format!("{indent}{INDENT}"));
        }
        scalar => scalar_value(out, scalar),
    }
}

fn pb_object(out: &mut String, fields: &[(&'static str, J)], indent: &str) {
    out.push_str("{\n");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(indent);
        out.push_str(INDENT);
        write_str(out, k);
        out.push_str(": ");
        pb_value(out, v, indent);
    }
    out.push('\n');
    out.push_str(indent);
    out.push('}');
}

fn scalar_value(out: &mut String, v: &J) {
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Int(n) => out.push_str(&n.to_string()),
        J::Num(f) => out.push_str(&go_float(*f)),
        J::Str(s) => write_str(out, s),
        J::Arr(_) | J::Obj(_) => {}
    }
}

/// Prints like Go's `json.MarshalIndent(v, "", "    ")`: empty arrays and objects are `[]`/`{}`.
pub fn go_json(v: &J) -> String {
    let mut out = String::new();
    go_value(&mut out, v, "");
    out
}

fn go_value(out: &mut String, v: &J, indent: &str) {
    let inner = format!("{indent}{INDENT}");
    match v {
        J::Arr(items) if items.is_empty() => out.push_str("[]"),
        J::Obj(fields) if fields.is_empty() => out.push_str("{}"),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                out.push_str(&inner);
                go_value(out, item, &inner);
            }
            out.push('\n');
            out.push_str(indent);
            out.push(']');
        }
        J::Obj(fields) => {
            out.push('{');
            for (i, (k, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                out.push_str(&inner);
                write_str(out, k);
                out.push_str(": ");
                go_value(out, item, &inner);
            }
            out.push('\n');
            out.push_str(indent);
            out.push('}');
        }
        scalar => scalar_value(out, scalar),
    }
}

/// A `pb` message as jsonpb (EmitDefaults) sees it.
pub trait ToJson {
    fn to_json(&self) -> J;
}

/// Prints a response the way DM's `PrettyPrintResponse` does.
pub fn print_response<T: ToJson>(resp: &T) -> String {
    jsonpb(&resp.to_json())
}

fn opt<T: ToJson>(v: &Option<T>) -> J {
    v.as_ref().map_or(J::Null, ToJson::to_json)
}

fn arr<T: ToJson>(v: &[T]) -> J {
    J::Arr(v.iter().map(ToJson::to_json).collect())
}

/// An enum value by name; an unknown number prints as a bare number, as jsonpb does.
fn enum_j(v: i32, name: Option<&'static str>) -> J {
    name.map_or(J::Int(v.into()), J::s)
}

fn stage(v: i32) -> J {
    enum_j(v, pb::Stage::try_from(v).ok().map(|s| s.as_str_name()))
}

fn unit(v: i32) -> J {
    enum_j(v, pb::UnitType::try_from(v).ok().map(|s| s.as_str_name()))
}

fn task_op(v: i32) -> J {
    enum_j(v, pb::TaskOp::try_from(v).ok().map(|s| s.as_str_name()))
}

impl ToJson for pb::CommonWorkerResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            ("source", J::s(&self.source)),
            ("worker", J::s(&self.worker)),
        ])
    }
}

impl ToJson for pb::ProcessError {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("ErrCode", J::Int(self.err_code.into())),
            ("ErrClass", J::s(&self.err_class)),
            ("ErrScope", J::s(&self.err_scope)),
            ("ErrLevel", J::s(&self.err_level)),
            ("Message", J::s(&self.message)),
            ("RawCause", J::s(&self.raw_cause)),
            ("Workaround", J::s(&self.workaround)),
        ])
    }
}

impl ToJson for pb::ProcessResult {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("isCanceled", J::Bool(self.is_canceled)),
            ("errors", arr(&self.errors)),
            ("detail", J::bytes(&self.detail)),
        ])
    }
}

impl ToJson for pb::RelayStatus {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("masterBinlog", J::s(&self.master_binlog)),
            ("masterBinlogGtid", J::s(&self.master_binlog_gtid)),
            ("relaySubDir", J::s(&self.relay_sub_dir)),
            ("relayBinlog", J::s(&self.relay_binlog)),
            ("relayBinlogGtid", J::s(&self.relay_binlog_gtid)),
            ("relayCatchUpMaster", J::Bool(self.relay_catch_up_master)),
            ("stage", stage(self.stage)),
            ("result", opt(&self.result)),
        ])
    }
}

impl ToJson for pb::SourceStatus {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("source", J::s(&self.source)),
            ("worker", J::s(&self.worker)),
            ("result", opt(&self.result)),
            ("relayStatus", opt(&self.relay_status)),
        ])
    }
}

impl ToJson for pb::CheckStatus {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("passed", J::Bool(self.passed)),
            ("total", J::Int(self.total.into())),
            ("successful", J::Int(self.successful.into())),
            ("failed", J::Int(self.failed.into())),
            ("warning", J::Int(self.warning.into())),
            ("detail", J::bytes(&self.detail)),
        ])
    }
}

impl ToJson for pb::DumpStatus {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("totalTables", J::i64(self.total_tables)),
            ("completedTables", J::Num(self.completed_tables)),
            ("finishedBytes", J::Num(self.finished_bytes)),
            ("finishedRows", J::Num(self.finished_rows)),
            ("estimateTotalRows", J::Num(self.estimate_total_rows)),
            ("bps", J::i64(self.bps)),
            ("progress", J::s(&self.progress)),
        ])
    }
}

impl ToJson for pb::LoadStatus {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("finishedBytes", J::i64(self.finished_bytes)),
            ("totalBytes", J::i64(self.total_bytes)),
            ("progress", J::s(&self.progress)),
            ("metaBinlog", J::s(&self.meta_binlog)),
            ("metaBinlogGTID", J::s(&self.meta_binlog_gtid)),
            ("bps", J::i64(self.bps)),
        ])
    }
}

impl ToJson for pb::ShardingGroup {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("target", J::s(&self.target)),
            ("DDLs", J::strs(&self.dd_ls)),
            ("firstLocation", J::s(&self.first_location)),
            ("synced", J::strs(&self.synced)),
            ("unsynced", J::strs(&self.unsynced)),
        ])
    }
}

impl ToJson for pb::SyncStatus {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("totalEvents", J::i64(self.total_events)),
            ("totalTps", J::i64(self.total_tps)),
            ("recentTps", J::i64(self.recent_tps)),
            ("masterBinlog", J::s(&self.master_binlog)),
            ("masterBinlogGtid", J::s(&self.master_binlog_gtid)),
            ("syncerBinlog", J::s(&self.syncer_binlog)),
            ("syncerBinlogGtid", J::s(&self.syncer_binlog_gtid)),
            ("blockingDDLs", J::strs(&self.blocking_dd_ls)),
            ("unresolvedGroups", arr(&self.unresolved_groups)),
            ("synced", J::Bool(self.synced)),
            ("binlogType", J::s(&self.binlog_type)),
            ("secondsBehindMaster", J::i64(self.seconds_behind_master)),
        ])
    }
}

impl ToJson for pb::SubTaskStatus {
    fn to_json(&self) -> J {
        use pb::sub_task_status::Status;
        let mut fields = vec![
            ("name", J::s(&self.name)),
            ("stage", stage(self.stage)),
            ("unit", unit(self.unit)),
            ("result", opt(&self.result)),
            ("unresolvedDDLLockID", J::s(&self.unresolved_ddl_lock_id)),
        ];
        match &self.status {
            None => {}
            Some(Status::Msg(m)) => fields.push(("msg", J::s(m))),
            Some(Status::Check(c)) => fields.push(("check", c.to_json())),
            Some(Status::Dump(d)) => fields.push(("dump", d.to_json())),
            Some(Status::Load(l)) => fields.push(("load", l.to_json())),
            Some(Status::Sync(s)) => fields.push(("sync", s.to_json())),
        }
        J::Obj(fields)
    }
}

impl ToJson for pb::QueryStatusResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            ("sourceStatus", opt(&self.source_status)),
            ("subTaskStatus", arr(&self.sub_task_status)),
        ])
    }
}

impl ToJson for pb::QueryStatusListResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            ("sources", arr(&self.sources)),
        ])
    }
}

/// `{result, msg, sources}` responses (RMS in dm-facts).
macro_rules! rms {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn to_json(&self) -> J {
                J::Obj(vec![
                    ("result", J::Bool(self.result)),
                    ("msg", J::s(&self.msg)),
                    ("sources", arr(&self.sources)),
                ])
            }
        }
    )*};
}
impl ToJson for pb::StartTaskResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            ("sources", arr(&self.sources)),
            ("checkResult", J::s(&self.check_result)),
        ])
    }
}

rms!(
    pb::UpdateTaskResponse,
    pb::OperateSourceResponse,
    pb::HandleErrorResponse,
    pb::OperateSchemaResponse
);

/// `{result, msg}` responses (RM in dm-facts).
macro_rules! rm {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn to_json(&self) -> J {
                J::Obj(vec![("result", J::Bool(self.result)), ("msg", J::s(&self.msg))])
            }
        }
    )*};
}
rm!(
    pb::CheckTaskResponse,
    pb::OfflineMemberResponse,
    pb::UnlockDdlLockResponse,
    pb::TransferSourceResponse
);

impl ToJson for pb::OperateTaskResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("op", task_op(self.op)),
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            ("sources", arr(&self.sources)),
        ])
    }
}

impl ToJson for pb::GetCfgResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            ("cfg", J::s(&self.cfg)),
        ])
    }
}

impl ToJson for pb::MasterInfo {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("name", J::s(&self.name)),
            ("memberID", J::u64(self.member_id)),
            ("alive", J::Bool(self.alive)),
            ("peerURLs", J::strs(&self.peer_ur_ls)),
            ("clientURLs", J::strs(&self.client_ur_ls)),
        ])
    }
}

impl ToJson for pb::WorkerInfo {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("name", J::s(&self.name)),
            ("addr", J::s(&self.addr)),
            ("stage", J::s(&self.stage)),
            ("source", J::s(&self.source)),
        ])
    }
}

impl ToJson for pb::ListLeaderMember {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("msg", J::s(&self.msg)),
            ("name", J::s(&self.name)),
            ("addr", J::s(&self.addr)),
        ])
    }
}

impl ToJson for pb::ListMasterMember {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("msg", J::s(&self.msg)),
            ("masters", arr(&self.masters)),
        ])
    }
}

impl ToJson for pb::ListWorkerMember {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("msg", J::s(&self.msg)),
            ("workers", arr(&self.workers)),
        ])
    }
}

impl ToJson for pb::Members {
    fn to_json(&self) -> J {
        use pb::members::Member;
        J::Obj(match &self.member {
            None => vec![],
            Some(Member::Leader(l)) => vec![("leader", l.to_json())],
            Some(Member::Master(m)) => vec![("master", m.to_json())],
            Some(Member::Worker(w)) => vec![("worker", w.to_json())],
        })
    }
}

impl ToJson for pb::ListMemberResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            ("members", arr(&self.members)),
        ])
    }
}

impl ToJson for pb::RefreshWorkerTasksMsg {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("worker", J::s(&self.worker)),
            ("msg", J::s(&self.msg)),
        ])
    }
}

impl ToJson for pb::UpdateMasterConfigResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            ("workers", arr(&self.workers)),
        ])
    }
}

impl ToJson for pb::RefreshWorkerTasksResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("result", J::Bool(self.result)),
            ("workers", arr(&self.workers)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_go_encoding_json() {
        let cases = [
            (0.0, "0"),
            (3.0, "3"),
            (32.5, "32.5"),
            (0.1, "0.1"),
            (1e-6, "0.000001"),
            (1.5e-7, "1.5e-7"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (-2.5e22, "-2.5e+22"),
            (123456789.125, "123456789.125"),
        ];
        for (f, want) in cases {
            assert_eq!(go_float(f), want, "{f}");
        }
    }

    fn ok_sync_status() -> pb::QueryStatusListResponse {
        pb::QueryStatusListResponse {
            result: true,
            msg: String::new(),
            sources: vec![pb::QueryStatusResponse {
                result: true,
                msg: String::new(),
                source_status: Some(pb::SourceStatus {
                    source: "mysql-replica-01".into(),
                    worker: "worker1".into(),
                    result: None,
                    relay_status: None,
                }),
                sub_task_status: vec![pb::SubTaskStatus {
                    name: "test".into(),
                    stage: pb::Stage::Running as i32,
                    unit: pb::UnitType::Sync as i32,
                    result: None,
                    unresolved_ddl_lock_id: String::new(),
                    status: Some(pb::sub_task_status::Status::Sync(pb::SyncStatus {
                        total_events: 12,
                        total_tps: 0,
                        recent_tps: 0,
                        master_binlog: "(mysql-bin.000001, 1234)".into(),
                        master_binlog_gtid: "0-1-7".into(),
                        syncer_binlog: "(mysql-bin.000001, 1234)".into(),
                        syncer_binlog_gtid: String::new(),
                        blocking_dd_ls: vec![],
                        unresolved_groups: vec![],
                        synced: true,
                        binlog_type: "remote".into(),
                        seconds_behind_master: 0,
                    })),
                }],
            }],
        }
    }

    #[test]
    fn query_status_prints_as_gogo_jsonpb() {
        let want = r#"{
    "result": true,
    "msg": "",
    "sources": [
        {
            "result": true,
            "msg": "",
            "sourceStatus": {
                "source": "mysql-replica-01",
                "worker": "worker1",
                "result": null,
                "relayStatus": null
            },
            "subTaskStatus": [
                {
                    "name": "test",
                    "stage": "Running",
                    "unit": "Sync",
                    "result": null,
                    "unresolvedDDLLockID": "",
                    "sync": {
                        "totalEvents": "12",
                        "totalTps": "0",
                        "recentTps": "0",
                        "masterBinlog": "(mysql-bin.000001, 1234)",
                        "masterBinlogGtid": "0-1-7",
                        "syncerBinlog": "(mysql-bin.000001, 1234)",
                        "syncerBinlogGtid": "",
                        "blockingDDLs": [
                        ],
                        "unresolvedGroups": [
                        ],
                        "synced": true,
                        "binlogType": "remote",
                        "secondsBehindMaster": "0"
                    }
                }
            ]
        }
    ]
}"#;
        assert_eq!(print_response(&ok_sync_status()), want);
    }

    #[test]
    fn subtask_oneof_prints_only_the_set_member() {
        use pb::sub_task_status::Status;
        let base = pb::SubTaskStatus {
            name: "t".into(),
            stage: pb::Stage::Paused as i32,
            unit: pb::UnitType::Load as i32,
            result: Some(pb::ProcessResult {
                is_canceled: false,
                errors: vec![pb::ProcessError {
                    err_code: 10001,
                    err_class: "database".into(),
                    err_scope: "downstream".into(),
                    err_level: "high".into(),
                    message: "a < b & c".into(),
                    raw_cause: "x\n\"y\"".into(),
                    workaround: String::new(),
                }],
                detail: vec![],
            }),
            unresolved_ddl_lock_id: String::new(),
            status: None,
        };
        let cases: Vec<(Option<Status>, &str)> = vec![
            (None, ""),
            (
                Some(Status::Msg("no sub task with name t has started".into())),
                ",\n    \"msg\": \"no sub task with name t has started\"",
            ),
            (
                Some(Status::Dump(pb::DumpStatus::default())),
                ",\n    \"dump\": {\n        \"totalTables\": \"0\",\n        \"completedTables\": 0,\n        \"finishedBytes\": 0,\n        \"finishedRows\": 0,\n        \"estimateTotalRows\": 0,\n        \"bps\": \"0\",\n        \"progress\": \"\"\n    }",
            ),
            (
                Some(Status::Dump(pb::DumpStatus {
                    total_tables: 10,
                    completed_tables: 3.0,
                    finished_bytes: 2542.0,
                    finished_rows: 32.0,
                    estimate_total_rows: 563.5,
                    bps: 445,
                    progress: "30.52 %".into(),
                })),
                ",\n    \"dump\": {\n        \"totalTables\": \"10\",\n        \"completedTables\": 3,\n        \"finishedBytes\": 2542,\n        \"finishedRows\": 32,\n        \"estimateTotalRows\": 563.5,\n        \"bps\": \"445\",\n        \"progress\": \"30.52 %\"\n    }",
            ),
            (
                Some(Status::Load(pb::LoadStatus {
                    finished_bytes: 5,
                    total_bytes: 10,
                    progress: "50.00 %".into(),
                    meta_binlog: "(mysql-bin.000001, 4)".into(),
                    meta_binlog_gtid: String::new(),
                    bps: 1024,
                })),
                ",\n    \"load\": {\n        \"finishedBytes\": \"5\",\n        \"totalBytes\": \"10\",\n        \"progress\": \"50.00 %\",\n        \"metaBinlog\": \"(mysql-bin.000001, 4)\",\n        \"metaBinlogGTID\": \"\",\n        \"bps\": \"1024\"\n    }",
            ),
            (
                Some(Status::Check(pb::CheckStatus {
                    passed: false,
                    total: 3,
                    successful: 2,
                    failed: 1,
                    warning: 0,
                    detail: b"{}".to_vec(),
                })),
                ",\n    \"check\": {\n        \"passed\": false,\n        \"total\": 3,\n        \"successful\": 2,\n        \"failed\": 1,\n        \"warning\": 0,\n        \"detail\": \"e30=\"\n    }",
            ),
        ];
        let head = r#"{
    "name": "t",
    "stage": "Paused",
    "unit": "Load",
    "result": {
        "isCanceled": false,
        "errors": [
            {
                "ErrCode": 10001,
                "ErrClass": "database",
                "ErrScope": "downstream",
                "ErrLevel": "high",
                "Message": "a \u003c b \u0026 c",
                "RawCause": "x\n\"y\"",
                "Workaround": ""
            }
        ],
        "detail": null
    },
    "unresolvedDDLLockID": """#;
        for (status, tail) in cases {
            let mut st = base.clone();
            st.status = status;
            assert_eq!(print_response(&st), format!("{head}{tail}\n}}"));
        }
    }

    #[test]
    fn list_member_prints_each_oneof_member() {
        use pb::members::Member;
        let resp = pb::ListMemberResponse {
            result: true,
            msg: String::new(),
            members: vec![
                pb::Members {
                    member: Some(Member::Leader(pb::ListLeaderMember {
                        msg: String::new(),
                        name: "master1".into(),
                        addr: "127.0.0.1:8261".into(),
                    })),
                },
                pb::Members {
                    member: Some(Member::Master(pb::ListMasterMember {
                        msg: String::new(),
                        masters: vec![pb::MasterInfo {
                            name: "master1".into(),
                            member_id: 18446744073709551615,
                            alive: true,
                            peer_ur_ls: vec!["http://127.0.0.1:8291".into()],
                            client_ur_ls: vec![],
                        }],
                    })),
                },
                pb::Members {
                    member: Some(Member::Worker(pb::ListWorkerMember {
                        msg: String::new(),
                        workers: vec![pb::WorkerInfo {
                            name: "worker1".into(),
                            addr: "127.0.0.1:8262".into(),
                            stage: "bound".into(),
                            source: "mysql-replica-01".into(),
                        }],
                    })),
                },
            ],
        };
        let want = r#"{
    "result": true,
    "msg": "",
    "members": [
        {
            "leader": {
                "msg": "",
                "name": "master1",
                "addr": "127.0.0.1:8261"
            }
        },
        {
            "master": {
                "msg": "",
                "masters": [
                    {
                        "name": "master1",
                        "memberID": "18446744073709551615",
                        "alive": true,
                        "peerURLs": [
                            "http://127.0.0.1:8291"
                        ],
                        "clientURLs": [
                        ]
                    }
                ]
            }
        },
        {
            "worker": {
                "msg": "",
                "workers": [
                    {
                        "name": "worker1",
                        "addr": "127.0.0.1:8262",
                        "stage": "bound",
                        "source": "mysql-replica-01"
                    }
                ]
            }
        }
    ]
}"#;
        assert_eq!(print_response(&resp), want);
    }

    #[test]
    fn small_responses_print_in_field_order() {
        let cwr = pb::CommonWorkerResponse {
            result: false,
            msg: "boom".into(),
            source: "s1".into(),
            worker: "w1".into(),
        };
        let cases: Vec<(String, &str)> = vec![
            (
                print_response(&pb::OperateTaskResponse {
                    op: pb::TaskOp::Pause as i32,
                    result: true,
                    msg: String::new(),
                    sources: vec![cwr.clone()],
                }),
                "{\n    \"op\": \"Pause\",\n    \"result\": true,\n    \"msg\": \"\",\n    \"sources\": [\n        {\n            \"result\": false,\n            \"msg\": \"boom\",\n            \"source\": \"s1\",\n            \"worker\": \"w1\"\n        }\n    ]\n}",
            ),
            (
                print_response(&pb::OperateTaskResponse {
                    op: 42,
                    result: false,
                    msg: "x".into(),
                    sources: vec![],
                }),
                "{\n    \"op\": 42,\n    \"result\": false,\n    \"msg\": \"x\",\n    \"sources\": [\n    ]\n}",
            ),
            (
                print_response(&pb::StartTaskResponse {
                    result: true,
                    msg: String::new(),
                    sources: vec![],
                    check_result: "pre-check is passed. ".into(),
                }),
                "{\n    \"result\": true,\n    \"msg\": \"\",\n    \"sources\": [\n    ],\n    \"checkResult\": \"pre-check is passed. \"\n}",
            ),
            (
                print_response(&pb::GetCfgResponse {
                    result: true,
                    msg: String::new(),
                    cfg: "name: t\npassword: '******'\n".into(),
                    dmrs_password_matches: None,
                }),
                "{\n    \"result\": true,\n    \"msg\": \"\",\n    \"cfg\": \"name: t\\npassword: '******'\\n\"\n}",
            ),
            (
                print_response(&pb::OfflineMemberResponse {
                    result: true,
                    msg: String::new(),
                }),
                "{\n    \"result\": true,\n    \"msg\": \"\"\n}",
            ),
            (
                print_response(&pb::QueryStatusResponse {
                    result: false,
                    msg: "no mysql source is being handled in the worker".into(),
                    source_status: None,
                    sub_task_status: vec![],
                }),
                "{\n    \"result\": false,\n    \"msg\": \"no mysql source is being handled in the worker\",\n    \"sourceStatus\": null,\n    \"subTaskStatus\": [\n    ]\n}",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn go_json_matches_marshal_indent() {
        let cases = vec![
            (J::Obj(vec![]), "{}"),
            (J::Arr(vec![]), "[]"),
            (
                J::Obj(vec![
                    ("result", J::Bool(true)),
                    ("msg", J::s("")),
                    ("tasks", J::Arr(vec![])),
                ]),
                "{\n    \"result\": true,\n    \"msg\": \"\",\n    \"tasks\": []\n}",
            ),
            (
                J::Obj(vec![(
                    "tasks",
                    J::Arr(vec![J::Obj(vec![
                        ("taskName", J::s("t")),
                        ("sources", J::Arr(vec![J::s("a"), J::s("b")])),
                    ])]),
                )]),
                "{\n    \"tasks\": [\n        {\n            \"taskName\": \"t\",\n            \"sources\": [\n                \"a\",\n                \"b\"\n            ]\n        }\n    ]\n}",
            ),
            (J::s("\u{1}\u{2028}>"), "\"\\u0001\\u2028\\u003e\""),
        ];
        for (v, want) in cases {
            assert_eq!(go_json(&v), want);
        }
    }
}
