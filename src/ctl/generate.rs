//! `dmctl generate-task-config`: a complete task file from a short description (name, mode,
//! sources, target, the tables to migrate, an optional shard merge), or — with
//! `--from-master` — the live cluster's tasks and sources as a directory ([`super::export`]).
//!
//! Called by [`super::dispatch`]. [`task_yaml`] is pure and table-tested: the file it writes
//! loads with DM's checks (it is checked before it is written) and never holds a clear
//! password: `--target-password` is kept when it is a `${ENV}` reference or DM ciphertext and
//! DM-encrypted otherwise.

use std::path::PathBuf;

use serde_norway::{Mapping, Value};

use super::master::{FAIL, OK, Target, USAGE};
use crate::password;

/// `generate-task-config` (see the module doc).
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Export the live cluster's tasks and sources into the directory -o DIR instead.
    #[arg(long = "from-master")]
    pub from_master: bool,
    /// With --from-master: only these tasks (and the sources they use).
    #[arg(value_name = "task")]
    pub tasks: Vec<String>,
    /// The task's name.
    #[arg(long)]
    pub name: Option<String>,
    /// full, incremental or all.
    #[arg(long = "task-mode", default_value = "all", value_parser = ["full", "incremental", "all"])]
    pub task_mode: String,
    /// Source IDs (repeat or separate with commas).
    #[arg(
        short = 's',
        long = "source",
        value_delimiter = ',',
        value_name = "SOURCE"
    )]
    pub sources: Vec<String>,
    /// The downstream, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub target: Option<String>,
    /// The downstream user.
    #[arg(long = "target-user", default_value = "root")]
    pub target_user: String,
    /// The downstream password: ${ENV_NAME}, DM ciphertext, or clear text (written encrypted).
    #[arg(long = "target-password", value_name = "PASSWORD")]
    pub target_password: Option<String>,
    /// Whole databases to migrate (repeat or separate with commas).
    #[arg(long, value_delimiter = ',', value_name = "DB")]
    pub databases: Vec<String>,
    /// Tables to migrate as DB.TABLE patterns with * and ? (`shop.*`, `shop.order_?`).
    #[arg(long = "pattern", value_delimiter = ',', value_name = "DB.TABLE")]
    pub patterns: Vec<String>,
    /// Merge every migrated table into this downstream table (DB.TABLE): a shard merge.
    #[arg(long = "route-to", value_name = "DB.TABLE")]
    pub route_to: Option<String>,
    /// The shard merge's DDL mode (with --route-to).
    #[arg(long = "shard-mode", value_parser = ["pessimistic", "optimistic"])]
    pub shard_mode: Option<String>,
    /// Where an incremental task starts: [SOURCE=]BINLOG-FILE:POS or [SOURCE=]GTID (MariaDB's
    /// domain-server-sequence); without SOURCE= it applies to every source.
    #[arg(long = "meta", value_name = "[SOURCE=]FILE:POS|GTID")]
    pub meta: Vec<String>,
    /// Write the task file here (default: stdout); with --from-master, the directory.
    #[arg(short = 'o', long = "out", value_name = "FILE|DIR")]
    pub out: Option<PathBuf>,
}

/// A task described in a few words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description {
    pub name: String,
    pub task_mode: String,
    pub sources: Vec<String>,
    pub target_host: String,
    pub target_port: u16,
    pub target_user: String,
    /// As given (None: no password).
    pub target_password: Option<String>,
    pub databases: Vec<String>,
    /// (db pattern, table pattern).
    pub tables: Vec<(String, String)>,
    /// (db, table).
    pub route_to: Option<(String, String)>,
    pub shard_mode: Option<String>,
    /// (source or None for all, meta).
    pub meta: Vec<(Option<String>, StartAt)>,
}

/// Where an incremental task starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    Position(String, u32),
    Gtid(String),
}

/// `DB.TABLE` split at the first dot; both parts required.
fn db_table(flag: &str, v: &str) -> Result<(String, String), String> {
    match v.split_once('.') {
        Some((d, t)) if !d.is_empty() && !t.is_empty() => Ok((d.to_string(), t.to_string())),
        _ => Err(format!(
            "--{flag} {v:?}: want DB.TABLE (e.g. shop.orders or shop.*)"
        )),
    }
}

fn parse_meta(v: &str, sources: &[String]) -> Result<(Option<String>, StartAt), String> {
    let (source, rest) = match v.split_once('=') {
        Some((s, rest)) if sources.iter().any(|x| x == s) => (Some(s.to_string()), rest),
        Some((s, _)) => {
            return Err(format!(
                "--meta {v:?}: {s:?} is not one of the task's sources ({})",
                sources.join(", ")
            ));
        }
        None => (None, v),
    };
    let at = match rest.rsplit_once(':') {
        Some((file, pos)) if !file.is_empty() && pos.chars().all(|c| c.is_ascii_digit()) => {
            let pos = pos
                .parse()
                .map_err(|_| format!("--meta {v:?}: position {pos} is too large"))?;
            StartAt::Position(file.to_string(), pos)
        }
        _ if !rest.is_empty() && !rest.contains(':') => StartAt::Gtid(rest.to_string()),
        _ => {
            return Err(format!(
                "--meta {v:?}: want BINLOG-FILE:POS (mariadb-bin.000001:4) or a MariaDB GTID (0-1-42)"
            ));
        }
    };
    Ok((source, at))
}

impl Description {
    /// The description the command line gives, or what is missing or wrong.
    pub fn from_args(a: &GenerateArgs) -> Result<Description, String> {
        let name = a
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or("--name is required: the task's name")?;
        if a.sources.is_empty() {
            return Err("at least one --source SOURCE-ID is required".into());
        }
        let target = a
            .target
            .as_deref()
            .ok_or("--target HOST:PORT is required: the downstream database")?;
        let (host, port) = target
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .filter(|(h, _)| !h.is_empty())
            .ok_or_else(|| format!("--target {target:?}: want HOST:PORT (e.g. 127.0.0.1:4000)"))?;
        let mut tables = Vec::new();
        for p in &a.patterns {
            tables.push(db_table("pattern", p)?);
        }
        if tables.is_empty() && a.databases.is_empty() {
            return Err(
                "say what to migrate: --databases db1,db2 and/or --pattern db.table (e.g. shop.*)"
                    .into(),
            );
        }
        let route_to = a
            .route_to
            .as_deref()
            .map(|r| db_table("route-to", r))
            .transpose()?;
        if route_to.is_none() && a.shard_mode.is_some() {
            return Err("--shard-mode goes with --route-to (a shard merge)".into());
        }
        let meta = a
            .meta
            .iter()
            .map(|m| parse_meta(m, &a.sources))
            .collect::<Result<Vec<_>, _>>()?;
        if a.task_mode == "incremental" {
            for s in &a.sources {
                if !meta
                    .iter()
                    .any(|(x, _)| x.is_none() || x.as_ref() == Some(s))
                {
                    return Err(format!(
                        "task-mode incremental needs where source {s} starts: --meta {s}=BINLOG-FILE:POS or --meta {s}=GTID"
                    ));
                }
            }
        } else if !meta.is_empty() {
            return Err(format!(
                "--meta is for task-mode incremental (task-mode {} starts from a full copy)",
                a.task_mode
            ));
        }
        Ok(Description {
            name,
            task_mode: a.task_mode.clone(),
            sources: a.sources.clone(),
            target_host: host.to_string(),
            target_port: port,
            target_user: a.target_user.clone(),
            target_password: a.target_password.clone(),
            databases: a.databases.clone(),
            tables,
            route_to,
            shard_mode: a.shard_mode.clone(),
            meta,
        })
    }
}

/// The password as the file holds it: a `${ENV}` reference or DM ciphertext (of any key: one
/// made with a master's secret key cannot be read here) as given, clear text DM-encrypted,
/// nothing as `""`.
pub fn password_for_file(given: Option<&str>) -> Result<String, String> {
    match given {
        None | Some("") => Ok(String::new()),
        Some(p) if password::env_reference(p).is_some() => Ok(p.to_string()),
        Some(p) if password::is_ciphertext(p) => Ok(p.to_string()),
        Some(p) => password::encrypt(p).map_err(|e| e.to_string()),
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in entries {
        m.insert(s(k), v);
    }
    Value::Mapping(m)
}

fn strs(v: &[String]) -> Value {
    Value::Sequence(v.iter().map(|x| s(x)).collect())
}

/// The task file of a description, checked with DM's rules before it is returned.
pub fn task_yaml(d: &Description) -> Result<String, String> {
    let password = password_for_file(d.target_password.as_deref())?;
    let text = render(d, &password)?;
    // The file must load as DM loads it; an unset ${ENV} is the user's to set, so the check
    // reads it as an empty password.
    let checked = match password::env_reference(&password) {
        Some(_) => render(d, "")?,
        None => text.clone(),
    };
    crate::config::parse_task(checked.as_bytes())
        .map_err(|e| format!("the generated task does not load: {e}"))?;
    Ok(text)
}

/// The task file's text with `password` as the target's password.
fn render(d: &Description, password: &str) -> Result<String, String> {
    // The whole databases, then the databases the patterns name.
    let mut dbs: Vec<String> = d.databases.clone();
    for (db, _) in &d.tables {
        if !dbs.contains(db) {
            dbs.push(db.clone());
        }
    }
    let mut ba = vec![("do-dbs", strs(&dbs))];
    if !d.tables.is_empty() {
        // do-tables, once set, blocks every other table: whole databases get `*`.
        let mut refs: Vec<(String, String)> = d
            .databases
            .iter()
            .map(|db| (db.clone(), "*".into()))
            .collect();
        for t in &d.tables {
            if !refs.contains(t) {
                refs.push(t.clone());
            }
        }
        ba.push((
            "do-tables",
            Value::Sequence(
                refs.iter()
                    .map(|(db, t)| map(vec![("db-name", s(db)), ("tbl-name", s(t))]))
                    .collect(),
            ),
        ));
    }
    let mut routes = Vec::new();
    if let Some((tdb, ttbl)) = &d.route_to {
        // Each migrated table to the merged one, and each database to its schema (so the
        // shards' CREATE DATABASE lands there too).
        let mut table_pats: Vec<(String, String)> = d
            .databases
            .iter()
            .map(|db| (db.clone(), "*".to_string()))
            .collect();
        table_pats.extend(d.tables.iter().cloned());
        for (i, db) in dbs.iter().enumerate() {
            routes.push((
                format!("{}-schema-{}", d.name, i + 1),
                map(vec![("schema-pattern", s(db)), ("target-schema", s(tdb))]),
            ));
        }
        for (i, (db, t)) in table_pats.iter().enumerate() {
            routes.push((
                format!("{}-table-{}", d.name, i + 1),
                map(vec![
                    ("schema-pattern", s(db)),
                    ("table-pattern", s(t)),
                    ("target-schema", s(tdb)),
                    ("target-table", s(ttbl)),
                ]),
            ));
        }
    }
    let route_names: Vec<String> = routes.iter().map(|(n, _)| n.clone()).collect();
    let instances = d
        .sources
        .iter()
        .map(|src| {
            let mut inst = vec![("source-id", s(src))];
            let at = d
                .meta
                .iter()
                .find(|(x, _)| x.as_ref() == Some(src))
                .or_else(|| d.meta.iter().find(|(x, _)| x.is_none()));
            if let Some((_, at)) = at {
                inst.push((
                    "meta",
                    match at {
                        StartAt::Position(f, p) => map(vec![
                            ("binlog-name", s(f)),
                            ("binlog-pos", Value::Number((*p).into())),
                        ]),
                        StartAt::Gtid(g) => map(vec![("binlog-gtid", s(g))]),
                    },
                ));
            }
            inst.push(("block-allow-list", s("migrated")));
            if !route_names.is_empty() {
                inst.push(("route-rules", strs(&route_names)));
            }
            map(inst)
        })
        .collect();
    let mut top = vec![("name", s(&d.name)), ("task-mode", s(&d.task_mode))];
    if d.route_to.is_some() {
        top.push((
            "shard-mode",
            s(d.shard_mode.as_deref().unwrap_or("pessimistic")),
        ));
    }
    top.push((
        "target-database",
        map(vec![
            ("host", s(&d.target_host)),
            ("port", Value::Number(d.target_port.into())),
            ("user", s(&d.target_user)),
            ("password", s(password)),
        ]),
    ));
    top.push(("mysql-instances", Value::Sequence(instances)));
    top.push(("block-allow-list", map(vec![("migrated", map(ba))])));
    if !routes.is_empty() {
        let mut m = Mapping::new();
        for (n, r) in routes {
            m.insert(Value::String(n), r);
        }
        top.push(("routes", Value::Mapping(m)));
    }
    let body = serde_norway::to_string(&map(top)).map_err(|e| e.to_string())?;
    Ok(format!(
        "# Written by `dmctl generate-task-config`; check it with `dmctl check-task --offline FILE`.\n{body}"
    ))
}

/// Runs `generate-task-config`.
pub fn run(a: &GenerateArgs, t: &Target) -> u8 {
    if a.from_master {
        return super::export::from_master(a, t);
    }
    if !a.tasks.is_empty() {
        eprintln!(
            "task names ({}) go with --from-master; to describe a new task use --name",
            a.tasks.join(", ")
        );
        return USAGE;
    }
    let d = match Description::from_args(a) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("generate-task-config: {e}");
            return USAGE;
        }
    };
    let text = match task_yaml(&d) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("generate-task-config: {e}");
            return FAIL;
        }
    };
    match &a.out {
        None => {
            print!("{text}");
            OK
        }
        Some(path) => match super::master::write_private(path, text.as_bytes()) {
            Ok(()) => {
                eprintln!("task {} written to {}", d.name, path.display());
                OK
            }
            Err(e) => {
                eprintln!("{}: can not write the task file: {e}", path.display());
                FAIL
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn desc(args: &[&str]) -> Result<Description, String> {
        let raw = ["dmctl", "generate-task-config"]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect();
        let cli = crate::ctl::Cli::try_parse_from(crate::ctl::args::normalize(raw))
            .map_err(|e| e.to_string())?;
        let Some(crate::ctl::Command::GenerateTaskConfig(a)) = cli.command else {
            panic!("not generate-task-config")
        };
        Description::from_args(&a)
    }

    const BASE: &[&str] = &["--name", "orders", "-s", "s1", "--target", "10.0.0.5:4000"];

    fn with(extra: &[&'static str]) -> Vec<&'static str> {
        BASE.iter().copied().chain(extra.iter().copied()).collect()
    }

    #[test]
    fn a_database_list_becomes_a_complete_task() {
        let d = desc(&with(&["--databases", "shop,crm"])).unwrap();
        let y = task_yaml(&d).unwrap();
        assert_eq!(
            y,
            "# Written by `dmctl generate-task-config`; check it with `dmctl check-task --offline FILE`.
name: orders
task-mode: all
target-database:
  host: 10.0.0.5
  port: 4000
  user: root
  password: ''
mysql-instances:
- source-id: s1
  block-allow-list: migrated
block-allow-list:
  migrated:
    do-dbs:
    - shop
    - crm
"
        );
    }

    #[test]
    fn patterns_and_a_route_make_a_shard_merge() {
        let d = desc(&with(&[
            "-s",
            "s2",
            "--pattern",
            "shop_*.order_?",
            "--databases",
            "crm",
            "--route-to",
            "all.orders",
        ]))
        .unwrap();
        let y = task_yaml(&d).unwrap();
        let want = "name: orders
task-mode: all
shard-mode: pessimistic
target-database:
  host: 10.0.0.5
  port: 4000
  user: root
  password: ''
mysql-instances:
- source-id: s1
  block-allow-list: migrated
  route-rules:
  - orders-schema-1
  - orders-schema-2
  - orders-table-1
  - orders-table-2
- source-id: s2
  block-allow-list: migrated
  route-rules:
  - orders-schema-1
  - orders-schema-2
  - orders-table-1
  - orders-table-2
block-allow-list:
  migrated:
    do-dbs:
    - crm
    - shop_*
    do-tables:
    - db-name: crm
      tbl-name: '*'
    - db-name: shop_*
      tbl-name: order_?
routes:
  orders-schema-1:
    schema-pattern: crm
    target-schema: all
  orders-schema-2:
    schema-pattern: shop_*
    target-schema: all
  orders-table-1:
    schema-pattern: crm
    table-pattern: '*'
    target-schema: all
    target-table: orders
  orders-table-2:
    schema-pattern: shop_*
    table-pattern: order_?
    target-schema: all
    target-table: orders
";
        assert!(y.ends_with(want), "{y}");
        let loaded = crate::config::parse_task(y.as_bytes()).unwrap().config;
        assert_eq!(loaded.shard_mode, "pessimistic");
    }

    #[test]
    fn incremental_tasks_get_their_start_per_source() {
        let d = desc(&[
            "--name",
            "t",
            "--task-mode",
            "incremental",
            "-s",
            "s1,s2",
            "--target",
            "db:3306",
            "--pattern",
            "app.*",
            "--meta",
            "mariadb-bin.000002:4",
            "--meta",
            "s2=0-2-17",
        ])
        .unwrap();
        let y = task_yaml(&d).unwrap();
        assert!(
            y.contains(
                "- source-id: s1\n  meta:\n    binlog-name: mariadb-bin.000002\n    binlog-pos: 4\n"
            ),
            "{y}"
        );
        assert!(
            y.contains("- source-id: s2\n  meta:\n    binlog-gtid: 0-2-17\n"),
            "{y}"
        );
    }

    #[test]
    fn passwords_are_never_written_in_clear() {
        let env = password_for_file(Some("${DM_TARGET_PASSWORD}")).unwrap();
        assert_eq!(env, "${DM_TARGET_PASSWORD}");
        let cipher = password::encrypt("s3cret").unwrap();
        assert_eq!(password_for_file(Some(&cipher)).unwrap(), cipher);
        let sealed = password_for_file(Some("s3cret")).unwrap();
        assert_ne!(sealed, "s3cret");
        assert_eq!(password::decrypt(&sealed).unwrap(), "s3cret");
        assert_eq!(password_for_file(None).unwrap(), "");
        // The whole file: no clear text, and a ${ENV} reference is kept as is.
        let d = desc(&with(&[
            "--databases",
            "shop",
            "--target-password",
            "s3cret",
        ]))
        .unwrap();
        let y = task_yaml(&d).unwrap();
        assert!(!y.contains("s3cret"), "{y}");
        let d = desc(&with(&[
            "--databases",
            "shop",
            "--target-password",
            "${DM_RS_UNSET_FOR_THIS_TEST}",
        ]))
        .unwrap();
        let y = task_yaml(&d).unwrap();
        assert!(y.contains("password: ${DM_RS_UNSET_FOR_THIS_TEST}"), "{y}");
    }

    #[test]
    fn a_description_that_is_missing_something_says_what() {
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (
                vec!["-s", "s1", "--target", "h:1", "--databases", "d"],
                "--name is required",
            ),
            (
                vec!["--name", "t", "--target", "h:1", "--databases", "d"],
                "at least one --source",
            ),
            (
                vec!["--name", "t", "-s", "s1", "--databases", "d"],
                "--target HOST:PORT is required",
            ),
            (with(&[]), "say what to migrate"),
            (
                vec![
                    "--name",
                    "t",
                    "-s",
                    "s1",
                    "--target",
                    "nohost",
                    "--databases",
                    "d",
                ],
                "--target \"nohost\": want HOST:PORT",
            ),
            (
                with(&["--pattern", "shop"]),
                "--pattern \"shop\": want DB.TABLE",
            ),
            (
                with(&["--databases", "d", "--route-to", "x"]),
                "--route-to \"x\": want DB.TABLE",
            ),
            (
                with(&["--databases", "d", "--shard-mode", "optimistic"]),
                "--shard-mode goes with --route-to",
            ),
            (
                with(&["--databases", "d", "--task-mode", "incremental"]),
                "task-mode incremental needs where source s1 starts",
            ),
            (
                with(&["--databases", "d", "--meta", "b.000001:4"]),
                "--meta is for task-mode incremental",
            ),
            (
                with(&[
                    "--databases",
                    "d",
                    "--task-mode",
                    "incremental",
                    "--meta",
                    "s9=b.1:4",
                ]),
                "\"s9\" is not one of the task's sources",
            ),
            (
                with(&[
                    "--databases",
                    "d",
                    "--task-mode",
                    "incremental",
                    "--meta",
                    "3e11fa47-71ca:1-5",
                ]),
                "want BINLOG-FILE:POS",
            ),
        ];
        for (args, want) in cases {
            let e = desc(&args).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }
}
