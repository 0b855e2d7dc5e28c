//! What newer DM clients (DM v6+ dmctl) send, against a real dm-master, two dm-workers and
//! MariaDB, over the wire with a tonic client: `OperateSource` with `workerName` binds to that
//! worker (or is refused with a reason), `startTime` on start-task / check-task is refused with
//! a clear message (never silently dropped), and `OperateTask` with op `Delete` (7) stops the
//! task exactly as `Stop` does. On the way, get-config's password comparison on the master and
//! what the planner makes of it.

mod common;

use std::time::{Duration, Instant};

use common::MariaDb;
use common::cluster::{Master, WorkerProc};
use common::sql::{master_pos, rt};
use dm_rs::pb::{self, master_client::MasterClient};
use tonic::transport::Channel;

async fn client(addr: &str) -> MasterClient<Channel> {
    let ch = dm_rs::rpc::connect(addr, Duration::from_secs(5), Duration::from_secs(30))
        .await
        .expect("connect to dm-master");
    MasterClient::new(ch)
}

fn source_yaml(id: &str, port: u16) -> String {
    format!("source-id: {id}\nfrom: {{host: 127.0.0.1, port: {port}, user: root, password: ''}}\n")
}

fn task_yaml(source: &str, down: u16, file: &str, pos: u64) -> String {
    format!(
        "name: t6\ntask-mode: incremental\nignore-checking-items: [all]\n\
target-database: {{host: 127.0.0.1, port: {down}, user: root, password: ''}}\n\
mysql-instances:\n  - source-id: {source}\n    meta: {{binlog-name: {file}, binlog-pos: {pos}}}\n    block-allow-list: app\n\
block-allow-list:\n  app: {{do-dbs: [app]}}\n"
    )
}

fn create(yaml: String, worker: &str) -> pb::OperateSourceRequest {
    pb::OperateSourceRequest {
        op: pb::SourceOp::StartSource as i32,
        config: vec![yaml],
        source_id: vec![],
        worker_name: worker.to_string(),
    }
}

/// Waits until both workers are online and free.
async fn wait_workers_free(c: &mut MasterClient<Channel>) {
    let t = Instant::now();
    loop {
        let r = c
            .list_member(pb::ListMemberRequest {
                worker: true,
                ..Default::default()
            })
            .await
            .expect("list-member")
            .into_inner();
        let free = r
            .members
            .iter()
            .filter_map(|m| match &m.member {
                Some(pb::members::Member::Worker(w)) => Some(w),
                _ => None,
            })
            .flat_map(|w| w.workers.iter())
            .filter(|w| w.stage == "free")
            .count();
        if free == 2 {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "workers: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn dm6_fields_worker_name_start_time_and_delete() {
    let (up, down) = MariaDb::pair(61);
    let dir = tempfile::tempdir().unwrap();
    let master = Master::start(dir.path(), false);
    let _w1 = WorkerProc::start(dir.path(), "w1", &master.addr);
    let _w2 = WorkerProc::start(dir.path(), "w2", &master.addr);
    let (file, pos) = master_pos(&up.url());

    rt().block_on(async {
        let mut c = client(&master.addr).await;
        wait_workers_free(&mut c).await;

        // workerName: a worker that does not exist is refused, nothing is created.
        let r = c
            .operate_source(create(source_yaml("s1", up.port), "nosuch"))
            .await
            .unwrap()
            .into_inner();
        assert!(!r.result, "{r:?}");
        assert!(
            r.msg.contains("dm-worker with name nosuch not exists"),
            "{}",
            r.msg
        );
        // …then honoured: s1 goes to w2, although w1 comes first by name.
        let r = c
            .operate_source(create(source_yaml("s1", up.port), "w2"))
            .await
            .unwrap()
            .into_inner();
        assert!(r.result, "{r:?}");
        assert_eq!(r.sources[0].worker, "w2", "{r:?}");
        // A worker that is bound already is refused.
        let r = c
            .operate_source(create(source_yaml("s2", up.port), "w2"))
            .await
            .unwrap()
            .into_inner();
        assert!(!r.result, "{r:?}");
        assert!(
            r.msg.contains("w2 not free") && r.msg.contains("bound to source s1"),
            "{}",
            r.msg
        );

        // startTime: a bad format is DM's error, on start-task and on check-task (the time
        // itself: tests/dm_dmctl_check.rs).
        let task = task_yaml("s1", down.port, &file, pos);
        let r = c
            .start_task(pb::StartTaskRequest {
                task: task.clone(),
                start_time: "20240101 000000".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!r.result, "{r:?}");
        assert!(
            r.msg.starts_with("error while parse start-time"),
            "{}",
            r.msg
        );
        let r = c
            .check_task(pb::CheckTaskRequest {
                task: task.clone(),
                start_time: "2024-01-01".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            !r.result && r.msg.starts_with("error while parse start-time"),
            "{r:?}"
        );

        // Delete (7) stops the task as Stop does.
        let r = c
            .start_task(pb::StartTaskRequest {
                task: task.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.result, "{r:?}");

        // The password is compared on the master: get-config answers for the password sent
        // (sealed or plain) and shows only a keyed fingerprint.
        let ask = |compare: Option<String>| {
            let mut c = c.clone();
            async move {
                c.get_cfg(pb::GetCfgRequest {
                    r#type: pb::CfgType::TaskType as i32,
                    name: "t6".into(),
                    dmrs_compare_password: compare,
                })
                .await
                .unwrap()
                .into_inner()
            }
        };
        let same = ask(Some(dm_rs::password::encrypt("").unwrap())).await;
        assert_eq!(same.dmrs_password_matches, Some(true), "{same:?}");
        assert!(
            same.cfg
                .contains("# dm-rs password-fingerprint: hmac-sha256:")
        );
        assert_eq!(
            ask(Some("other".into())).await.dmrs_password_matches,
            Some(false)
        );
        let plain = ask(None).await;
        assert_eq!(plain.dmrs_password_matches, None);
        assert_eq!(
            plain.cfg, same.cfg,
            "stable while the stored task is unchanged"
        );
        // …and the planner sees a changed password, and nothing when it is the same.
        let files = tempfile::tempdir().unwrap();
        let plan_for = |password: &str| {
            let yaml = task.replace("password: ''", &format!("password: '{password}'"));
            std::fs::write(files.path().join("t6.yaml"), yaml).unwrap();
            let desired = dm_rs::reconcile::desired::load_dir(files.path());
            let passwords = dm_rs::reconcile::live::desired_passwords(&desired);
            let addr = master.addr.clone();
            let live = std::thread::spawn(move || {
                dm_rs::reconcile::live::fetch(&addr, Duration::from_secs(10), &passwords)
            })
            .join()
            .unwrap()
            .expect("fetch live state");
            let p = dm_rs::reconcile::plan::plan(&desired, &live);
            p.tasks
                .into_iter()
                .find(|t| t.task == "t6")
                .expect("t6 planned")
        };
        let changed = plan_for("n3w");
        assert!(
            changed
                .fields
                .iter()
                .any(|f| f == "target-database.password"),
            "{:?}",
            changed.fields
        );
        let equal = plan_for("");
        assert!(equal.fields.is_empty(), "{:?}", equal.fields);
        assert!(equal.steps.is_empty(), "{:?}", equal.steps);

        let r = c
            .operate_task(pb::OperateTaskRequest {
                op: 7,
                name: "t6".into(),
                sources: vec![],
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.result, "{r:?}");
        assert_eq!(r.op, pb::TaskOp::Delete as i32);
        assert_eq!(r.sources.len(), 1, "{r:?}");
        assert!(r.sources[0].result, "{r:?}");
        let r = c
            .get_cfg(pb::GetCfgRequest {
                r#type: pb::CfgType::TaskType as i32,
                name: "t6".into(),
                dmrs_compare_password: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!r.result && r.msg.contains("not found"), "{r:?}");
        // Any other op is still refused.
        let r = c
            .operate_task(pb::OperateTaskRequest {
                op: pb::TaskOp::AutoResume as i32,
                name: "t6".into(),
                sources: vec![],
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!r.result && r.msg.contains("invalid op"), "{r:?}");
    });
}
