//! Wire-format test, NOT a cluster test: a fake `pb.Master` (tonic, in this test process) answers
//! with canned data, and the real dmctl binary must send the right requests and print DM's JSON
//! (summary form, full jsonpb form, exit codes). No dm-master or worker is involved.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use dm_rs::pb;
use dm_rs::pb::master_server::{Master, MasterServer};
use tonic::{Request, Response, Status};

/// Requests the fake master received, as `Debug` text.
type Log = Arc<Mutex<Vec<String>>>;

struct FakeMaster {
    log: Log,
}

fn sub(name: &str, stage: pb::Stage, errors: bool) -> pb::SubTaskStatus {
    pb::SubTaskStatus {
        name: name.into(),
        stage: stage as i32,
        unit: pb::UnitType::Sync as i32,
        result: errors.then(|| pb::ProcessResult {
            is_canceled: false,
            errors: vec![pb::ProcessError {
                err_code: 36069,
                message: "boom".into(),
                ..Default::default()
            }],
            detail: vec![],
        }),
        unresolved_ddl_lock_id: String::new(),
        status: Some(pb::sub_task_status::Status::Msg("m".into())),
    }
}

fn source(id: &str, subs: Vec<pb::SubTaskStatus>) -> pb::QueryStatusResponse {
    pb::QueryStatusResponse {
        result: true,
        msg: String::new(),
        source_status: Some(pb::SourceStatus {
            source: id.into(),
            worker: format!("worker-{id}"),
            result: None,
            relay_status: None,
        }),
        sub_task_status: subs,
    }
}

/// The `n`-th (1-based) status of task `fulltask` on s1: Dump, then Load at half, then Load
/// Finished (and the same again for every later call).
fn full_task_status(n: usize) -> pb::QueryStatusListResponse {
    use pb::sub_task_status::Status as S;
    let (stage, unit, status) = match n {
        1 => (
            pb::Stage::Running,
            pb::UnitType::Dump,
            S::Dump(pb::DumpStatus {
                total_tables: 4,
                completed_tables: 1.0,
                finished_bytes: 1024.0,
                finished_rows: 10.0,
                estimate_total_rows: 40.0,
                bps: 0,
                progress: "25.00 %".into(),
            }),
        ),
        2 => (
            pb::Stage::Running,
            pb::UnitType::Load,
            S::Load(pb::LoadStatus {
                finished_bytes: 2048,
                total_bytes: 4096,
                progress: "50.00 %".into(),
                meta_binlog: "(mysql-bin.000001, 4)".into(),
                meta_binlog_gtid: String::new(),
                bps: 1024,
            }),
        ),
        _ => (
            pb::Stage::Finished,
            pb::UnitType::Load,
            S::Load(pb::LoadStatus {
                finished_bytes: 4096,
                total_bytes: 4096,
                progress: "100.00 %".into(),
                meta_binlog: "(mysql-bin.000001, 4)".into(),
                meta_binlog_gtid: String::new(),
                bps: 0,
            }),
        ),
    };
    pb::QueryStatusListResponse {
        result: true,
        msg: String::new(),
        sources: vec![source(
            "s1",
            vec![pb::SubTaskStatus {
                name: "fulltask".into(),
                stage: stage as i32,
                unit: unit as i32,
                result: None,
                unresolved_ddl_lock_id: String::new(),
                status: Some(status),
            }],
        )],
    }
}

#[tonic::async_trait]
impl Master for FakeMaster {
    async fn query_status(
        &self,
        req: Request<pb::QueryStatusListRequest>,
    ) -> Result<Response<pb::QueryStatusListResponse>, Status> {
        let req = req.into_inner();
        let calls = {
            let mut log = self.log.lock().unwrap();
            log.push(format!("{req:?}"));
            log.iter().filter(|l| l.contains("\"fulltask\"")).count()
        };
        let resp = if req.name == "fulltask" {
            full_task_status(calls)
        } else if req.name == "broken" {
            pb::QueryStatusListResponse {
                result: false,
                msg: "task broken has no source or not exist".into(),
                sources: vec![],
            }
        } else if req.sources == ["s9"] {
            pb::QueryStatusListResponse {
                result: true,
                msg: String::new(),
                sources: vec![source(
                    "s9",
                    vec![
                        sub("zz", pb::Stage::Running, false),
                        sub("bad", pb::Stage::Running, false),
                    ],
                )],
            }
        } else {
            pb::QueryStatusListResponse {
                result: true,
                msg: String::new(),
                sources: vec![
                    source(
                        "s1",
                        vec![
                            sub("orders", pb::Stage::Running, false),
                            sub("audit", pb::Stage::Paused, true),
                        ],
                    ),
                    source("s2", vec![sub("orders", pb::Stage::Paused, false)]),
                ],
            }
        };
        Ok(Response::new(resp))
    }

    async fn operate_task(
        &self,
        req: Request<pb::OperateTaskRequest>,
    ) -> Result<Response<pb::OperateTaskResponse>, Status> {
        let req = req.into_inner();
        self.log.lock().unwrap().push(format!("{req:?}"));
        let ok = req.name != "bad";
        Ok(Response::new(pb::OperateTaskResponse {
            op: req.op,
            result: ok,
            msg: if ok { String::new() } else { "nope".into() },
            sources: vec![pb::CommonWorkerResponse {
                result: ok,
                msg: String::new(),
                source: "s1".into(),
                worker: "worker-s1".into(),
            }],
        }))
    }

    async fn get_cfg(
        &self,
        req: Request<pb::GetCfgRequest>,
    ) -> Result<Response<pb::GetCfgResponse>, Status> {
        let req = req.into_inner();
        self.log.lock().unwrap().push(format!("{req:?}"));
        Ok(Response::new(pb::GetCfgResponse {
            result: true,
            msg: String::new(),
            cfg: "name: orders\npassword: '******'\n".into(),
            dmrs_password_matches: None,
        }))
    }

    async fn list_member(
        &self,
        req: Request<pb::ListMemberRequest>,
    ) -> Result<Response<pb::ListMemberResponse>, Status> {
        let req = req.into_inner();
        self.log.lock().unwrap().push(format!("{req:?}"));
        Ok(Response::new(pb::ListMemberResponse {
            result: true,
            msg: String::new(),
            members: vec![pb::Members {
                member: Some(pb::members::Member::Leader(pb::ListLeaderMember {
                    msg: String::new(),
                    name: "m1".into(),
                    addr: "127.0.0.1:8261".into(),
                })),
            }],
        }))
    }

    async fn start_task(
        &self,
        _: Request<pb::StartTaskRequest>,
    ) -> Result<Response<pb::StartTaskResponse>, Status> {
        Err(Status::unimplemented("start_task"))
    }

    async fn update_task(
        &self,
        _: Request<pb::UpdateTaskRequest>,
    ) -> Result<Response<pb::UpdateTaskResponse>, Status> {
        Err(Status::unimplemented("update_task"))
    }

    async fn show_ddl_locks(
        &self,
        _: Request<pb::ShowDdlLocksRequest>,
    ) -> Result<Response<pb::ShowDdlLocksResponse>, Status> {
        Err(Status::unimplemented("show_ddl_locks"))
    }

    async fn unlock_ddl_lock(
        &self,
        _: Request<pb::UnlockDdlLockRequest>,
    ) -> Result<Response<pb::UnlockDdlLockResponse>, Status> {
        Err(Status::unimplemented("unlock_ddl_lock"))
    }

    async fn operate_worker_relay_task(
        &self,
        _: Request<pb::OperateWorkerRelayRequest>,
    ) -> Result<Response<pb::OperateWorkerRelayResponse>, Status> {
        Err(Status::unimplemented("operate_worker_relay_task"))
    }

    async fn purge_worker_relay(
        &self,
        _: Request<pb::PurgeWorkerRelayRequest>,
    ) -> Result<Response<pb::PurgeWorkerRelayResponse>, Status> {
        Err(Status::unimplemented("purge_worker_relay"))
    }

    async fn check_task(
        &self,
        _: Request<pb::CheckTaskRequest>,
    ) -> Result<Response<pb::CheckTaskResponse>, Status> {
        Err(Status::unimplemented("check_task"))
    }

    async fn operate_source(
        &self,
        _: Request<pb::OperateSourceRequest>,
    ) -> Result<Response<pb::OperateSourceResponse>, Status> {
        Err(Status::unimplemented("operate_source"))
    }

    async fn register_worker(
        &self,
        _: Request<pb::RegisterWorkerRequest>,
    ) -> Result<Response<pb::RegisterWorkerResponse>, Status> {
        Err(Status::unimplemented("register_worker"))
    }

    async fn offline_member(
        &self,
        _: Request<pb::OfflineMemberRequest>,
    ) -> Result<Response<pb::OfflineMemberResponse>, Status> {
        Err(Status::unimplemented("offline_member"))
    }

    async fn operate_leader(
        &self,
        _: Request<pb::OperateLeaderRequest>,
    ) -> Result<Response<pb::OperateLeaderResponse>, Status> {
        Err(Status::unimplemented("operate_leader"))
    }

    async fn operate_schema(
        &self,
        _: Request<pb::OperateSchemaRequest>,
    ) -> Result<Response<pb::OperateSchemaResponse>, Status> {
        Err(Status::unimplemented("operate_schema"))
    }

    async fn get_sub_task_cfg(
        &self,
        _: Request<pb::GetSubTaskCfgRequest>,
    ) -> Result<Response<pb::GetSubTaskCfgResponse>, Status> {
        Err(Status::unimplemented("get_sub_task_cfg"))
    }

    async fn handle_error(
        &self,
        _: Request<pb::HandleErrorRequest>,
    ) -> Result<Response<pb::HandleErrorResponse>, Status> {
        Err(Status::unimplemented("handle_error"))
    }

    async fn get_master_cfg(
        &self,
        _: Request<pb::GetMasterCfgRequest>,
    ) -> Result<Response<pb::GetMasterCfgResponse>, Status> {
        Err(Status::unimplemented("get_master_cfg"))
    }

    async fn transfer_source(
        &self,
        _: Request<pb::TransferSourceRequest>,
    ) -> Result<Response<pb::TransferSourceResponse>, Status> {
        Err(Status::unimplemented("transfer_source"))
    }

    async fn operate_relay(
        &self,
        _: Request<pb::OperateRelayRequest>,
    ) -> Result<Response<pb::OperateRelayResponse>, Status> {
        Err(Status::unimplemented("operate_relay"))
    }

    async fn switch_worker_relay_master(
        &self,
        _: Request<pb::SwitchWorkerRelayMasterRequest>,
    ) -> Result<Response<pb::SwitchWorkerRelayMasterResponse>, Status> {
        Err(Status::unimplemented("switch_worker_relay_master"))
    }

    async fn update_worker_relay_config(
        &self,
        _: Request<pb::UpdateWorkerRelayConfigRequest>,
    ) -> Result<Response<pb::CommonWorkerResponse>, Status> {
        Err(Status::unimplemented("update_worker_relay_config"))
    }

    async fn migrate_worker_relay(
        &self,
        _: Request<pb::MigrateWorkerRelayRequest>,
    ) -> Result<Response<pb::CommonWorkerResponse>, Status> {
        Err(Status::unimplemented("migrate_worker_relay"))
    }

    async fn update_master_config(
        &self,
        _: Request<pb::UpdateMasterConfigRequest>,
    ) -> Result<Response<pb::UpdateMasterConfigResponse>, Status> {
        Err(Status::unimplemented("update_master_config"))
    }

    async fn encrypt(
        &self,
        _: Request<pb::EncryptRequest>,
    ) -> Result<Response<pb::EncryptResponse>, Status> {
        Err(Status::unimplemented("encrypt"))
    }

    async fn refresh_worker_tasks(
        &self,
        req: Request<pb::RefreshWorkerTasksRequest>,
    ) -> Result<Response<pb::RefreshWorkerTasksResponse>, Status> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{:?}", req.into_inner()));
        Ok(Response::new(pb::RefreshWorkerTasksResponse {
            result: true,
            workers: vec![
                pb::RefreshWorkerTasksMsg {
                    worker: "w1".into(),
                    msg: String::new(),
                },
                pb::RefreshWorkerTasksMsg {
                    worker: "w2".into(),
                    msg: "got response but with failed result".into(),
                },
            ],
        }))
    }
}

/// Starts the fake master on a free 127.0.0.1 port in a background thread of this process.
fn start_fake() -> (SocketAddr, Log) {
    let log: Log = Arc::default();
    let service = MasterServer::new(FakeMaster { log: log.clone() });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let incoming = futures_util::stream::unfold(listener, |l| async move {
                let conn = l.accept().await.map(|(s, _)| s);
                Some((conn, l))
            });
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
    });
    (rx.recv().unwrap(), log)
}

fn dmctl(addr: SocketAddr, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .arg("--master-addr")
        .arg(addr.to_string())
        .args(args)
        .env_remove("DM_MASTER_ADDR")
        .output()
        .expect("run dmctl")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn query_status_prints_dm_summary_then_full_forms() {
    let (addr, log) = start_fake();
    let o = dmctl(addr, &["query-status"]);
    assert_eq!(o.status.code(), Some(0));
    let want = r#"{
    "result": true,
    "msg": "",
    "tasks": [
        {
            "taskName": "audit",
            "taskStatus": "Error - Some error occurred in subtask. Please run `query-status audit` to get more details.",
            "sources": [
                "s1"
            ]
        },
        {
            "taskName": "orders",
            "taskStatus": "Paused",
            "sources": [
                "s1",
                "s2"
            ]
        }
    ]
}
"#;
    assert_eq!(out(&o), want);

    // --more, a task name or -s: the full jsonpb form
    for args in [
        vec!["query-status", "--more"],
        vec!["query-status", "-s", "s1,s2"],
    ] {
        let o = dmctl(addr, &args);
        assert_eq!(o.status.code(), Some(0));
        let text = out(&o);
        assert!(
            text.starts_with("{\n    \"result\": true,\n    \"msg\": \"\",\n    \"sources\": [\n"),
            "{text}"
        );
        assert!(text.contains("\"sourceStatus\": {\n                \"source\": \"s1\",\n                \"worker\": \"worker-s1\",\n                \"result\": null,\n                \"relayStatus\": null\n            },"), "{text}");
        assert!(text.contains("\"ErrCode\": 36069,"), "{text}");
        assert!(text.contains("\"msg\": \"m\"\n"), "{text}");
    }
    let o = dmctl(addr, &["query-status", "broken"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        out(&o),
        "{\n    \"result\": false,\n    \"msg\": \"task broken has no source or not exist\",\n    \"sources\": [\n    ]\n}\n"
    );
    let log = log.lock().unwrap();
    assert_eq!(
        log.as_slice(),
        [
            r#"QueryStatusListRequest { name: "", sources: [] }"#,
            r#"QueryStatusListRequest { name: "", sources: [] }"#,
            r#"QueryStatusListRequest { name: "", sources: ["s1", "s2"] }"#,
            r#"QueryStatusListRequest { name: "broken", sources: [] }"#,
        ]
    );
}

#[test]
fn operate_task_sends_the_op_and_name_and_prints_the_answer() {
    let (addr, log) = start_fake();
    let dir = tempfile::tempdir().unwrap();
    let task_file = dir.path().join("t.yaml");
    std::fs::write(&task_file, "name: orders\ntask-mode: all\n").unwrap();
    let task_file = task_file.display().to_string();

    let o = dmctl(addr, &["pause-task", "-w", "s1", &task_file]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        out(&o),
        "{\n    \"op\": \"Pause\",\n    \"result\": true,\n    \"msg\": \"\",\n    \"sources\": [\n        {\n            \"result\": true,\n            \"msg\": \"\",\n            \"source\": \"s1\",\n            \"worker\": \"worker-s1\"\n        }\n    ]\n}\n"
    );
    let o = dmctl(addr, &["stop-task", "bad"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("\"op\": \"Stop\",\n    \"result\": false,\n    \"msg\": \"nope\""));
    let o = dmctl(addr, &["resume-task", "orders"]);
    assert_eq!(o.status.code(), Some(0));

    // batch form: every subtask on one source, sorted, printed with encoding/json rules
    let o = dmctl(addr, &["pause-task", "-s", "s9"]);
    assert_eq!(o.status.code(), Some(1));
    let want = r#"{
    "result": true,
    "msg": "",
    "tasks": [
        {
            "task": "bad",
            "op": "Pause",
            "result": false,
            "msg": "nope",
            "sources": [
                {
                    "source": "s1",
                    "worker": "worker-s1"
                }
            ]
        },
        {
            "task": "zz",
            "op": "Pause",
            "result": true,
            "msg": "",
            "sources": [
                {
                    "result": true,
                    "source": "s1",
                    "worker": "worker-s1"
                }
            ]
        }
    ]
}
"#;
    assert_eq!(out(&o), want);

    let log = log.lock().unwrap();
    assert_eq!(
        log[..3],
        [
            r#"OperateTaskRequest { op: Pause, name: "orders", sources: ["s1"] }"#,
            r#"OperateTaskRequest { op: Stop, name: "bad", sources: [] }"#,
            r#"OperateTaskRequest { op: Resume, name: "orders", sources: [] }"#,
        ]
    );
    assert_eq!(
        log[3],
        r#"QueryStatusListRequest { name: "", sources: ["s9"] }"#
    );
}

#[test]
fn get_config_prints_or_writes_and_list_member_prints() {
    let (addr, log) = start_fake();
    let o = dmctl(addr, &["get-config", "task", "orders"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        out(&o),
        "{\n    \"result\": true,\n    \"msg\": \"\",\n    \"cfg\": \"name: orders\\npassword: '******'\\n\"\n}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.yaml");
    let o = dmctl(
        addr,
        &[
            "get-config",
            "task",
            "orders",
            "-f",
            &path.display().to_string(),
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "name: orders\npassword: '******'\n"
    );
    assert!(out(&o).contains(&format!(
        "\"msg\": \"write config to file {} succeed\",\n    \"cfg\": \"\"",
        path.display()
    )));
    let o = dmctl(addr, &["list-member", "--leader", "-n", "m1,m2"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(out(&o).contains(
        "\"leader\": {\n                \"msg\": \"\",\n                \"name\": \"m1\""
    ));
    let o = dmctl(addr, &["list-member", "--worker"]);
    assert_eq!(o.status.code(), Some(0));
    let log = log.lock().unwrap();
    assert_eq!(
        log[0],
        r#"GetCfgRequest { r#type: TaskType, name: "orders" }"#
    );
    assert_eq!(
        log[2],
        r#"ListMemberRequest { leader: true, master: false, worker: false, names: ["m1", "m2"] }"#
    );
    assert_eq!(
        log[3],
        r#"ListMemberRequest { leader: false, master: false, worker: true, names: [] }"#
    );
}

#[test]
fn refresh_worker_tasks_prints_dm_v1_answer() {
    let (addr, log) = start_fake();
    let o = dmctl(addr, &["refresh-worker-tasks"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        out(&o),
        r#"{
    "result": true,
    "workers": [
        {
            "worker": "w1",
            "msg": ""
        },
        {
            "worker": "w2",
            "msg": "got response but with failed result"
        }
    ]
}
"#
    );
    assert_eq!(log.lock().unwrap()[0], "RefreshWorkerTasksRequest");
}

/// `query-status TASK --watch` off a terminal: one plain line per source per change (no escape
/// codes), then the end line; exit 0 when the task finished, 1 when it is paused by an error;
/// a task the master does not know gives query-status' own answer. `--interval` sets how often
/// the status is read (the same lines, sooner).
#[test]
fn query_status_watch_prints_plain_lines_until_the_task_ends() {
    let (addr, _log) = start_fake();
    let o = dmctl(
        addr,
        &["query-status", "fulltask", "--watch", "--interval", "20ms"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        out(&o),
        "s1: Dump  Running  25.00 %  1 / 4 tables, 10 rows, 1.0 KiB\n\
         s1: Load  Running  50.00 %  2.0 KiB / 4.0 KiB  1.0 KiB/s\n\
         s1: Load  Finished  100.00 %  4.0 KiB / 4.0 KiB\n\
         task fulltask: Finished\n"
    );

    let o = dmctl(addr, &["query-status", "audit", "--watch"]);
    assert_eq!(o.status.code(), Some(1));
    let text = out(&o);
    assert!(
        text.starts_with("s1: Sync  Paused  m  error: [code=36069] boom\n"),
        "{text}"
    );
    assert!(
        text.contains("task audit: Paused by an error on s1: [code=36069] boom"),
        "{text}"
    );

    let plain = dmctl(addr, &["query-status", "broken"]);
    let watched = dmctl(addr, &["query-status", "broken", "--watch"]);
    assert_eq!(watched.status.code(), Some(1));
    assert_eq!(out(&watched), out(&plain));
}
