//! DM-style argument rewriting before clap sees the command line.

/// Long flags DM accepts with a single dash (`-master-addr`), as its `argsNeedAdjust` does.
const SINGLE_DASH_LONG: &[&str] = &[
    "master-addr",
    "encrypt",
    "decrypt",
    "rpc-timeout",
    "config",
    "ssl-ca",
    "ssl-cert",
    "ssl-key",
    "offline",
    "remove-meta",
    "source",
    "worker",
    "more",
    "watch",
    "out",
    "detailed-exitcode",
    "output",
    "yes",
    "auto-approve",
    "timeout",
    "interval",
    "admin-addr",
    "debounce",
    "verbose",
];

/// Global flags that take a value in the next argument (so that argument is not the command).
const GLOBAL_WITH_VALUE: &[&str] = &[
    "master-addr",
    "rpc-timeout",
    "encrypt",
    "decrypt",
    "config",
    "ssl-ca",
    "ssl-cert",
    "ssl-key",
];

/// Commands whose own `-w`/`--worker` means "worker member", not DM v1's source flag.
const MEMBER_COMMANDS: &[&str] = &["list-member", "offline-member"];

/// Commands whose `-w`/`--worker NAME` names a worker (DM v2+: `operate-source create -w`).
const WORKER_NAME_COMMANDS: &[&str] = &["operate-source"];
/// Commands whose own `-w` is a flag of theirs in DM v2+ (check-task: `-w/--warn count`).
const OWN_W_COMMANDS: &[&str] = &["check-task"];

/// DM v1's SQL operator commands: `-w` is the worker and `-s` the SQL pattern.
const SQL_COMMANDS: &[&str] = &["sql-skip", "sql-replace", "sql-inject"];

/// DM v1's break-ddl-lock: `-w` is the worker and `-s` is `--skip`.
const BREAK_COMMANDS: &[&str] = &["break-ddl-lock"];

/// Rewrites `-master-addr x` / `-master-addr=x` to their two-dash forms, and the seed's `-w`
/// (DM v1's `--worker`) to `-s` (DM v2's `--source`), except in the member commands and
/// operate-source, where `--worker` is a flag of its own, and in check-task, whose `-w` is
/// DM's `--warn`.
pub fn normalize(raw: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut after_separator = false;
    let mut command: Option<String> = None;
    let mut value_next = false;
    let all = raw.clone();
    for (i, a) in raw.into_iter().enumerate() {
        if i == 0 || after_separator {
            out.push(a);
            continue;
        }
        if a == "--" {
            after_separator = true;
            out.push(a);
            continue;
        }
        if command.is_none() {
            if value_next {
                value_next = false;
            } else if !a.starts_with('-') {
                command = Some(a.clone());
            } else {
                let name = a.trim_start_matches('-');
                value_next = !name.contains('=') && GLOBAL_WITH_VALUE.contains(&name);
            }
        }
        if command
            .as_deref()
            .is_some_and(|c| BREAK_COMMANDS.contains(&c))
        {
            let fixed = match a.as_str() {
                "-w" | "-worker" => Some("--worker"),
                // DM v1's `-s` is --skip; the seed's `break-ddl-lock <-w|-s ...> <task>` also
                // names sources with it: a `-s` followed by a name *and* the task is a source.
                "-s" if sources_follow(&all[i + 1..]) => Some("--source"),
                "-s" | "-skip" => Some("--skip"),
                "-e" | "-exec" => Some("--exec"),
                "-i" | "-remove-id" => Some("--remove-id"),
                _ => None,
            };
            if let Some(f) = fixed {
                out.push(f.to_string());
                continue;
            }
            if a.starts_with("--worker") {
                out.push(a);
                continue;
            }
        }
        let sql_cmd = command
            .as_deref()
            .is_some_and(|c| SQL_COMMANDS.contains(&c));
        if sql_cmd {
            let fixed = match a.as_str() {
                "-w" | "-worker" => Some("--worker".to_string()),
                "-s" | "-sql-pattern" => Some("--sql-pattern".to_string()),
                "-sharding" => Some("--sharding".to_string()),
                "-binlog-pos" => Some("--binlog-pos".to_string()),
                _ => None,
            };
            if let Some(f) = fixed {
                out.push(f);
                continue;
            }
            if a.starts_with("-w=") || a.starts_with("-s=") {
                let long = if a.starts_with("-w") {
                    "--worker"
                } else {
                    "--sql-pattern"
                };
                out.push(format!("{long}{}", &a[2..]));
                continue;
            }
            if let Some(rest) = a.strip_prefix("-worker=") {
                out.push(format!("--worker={rest}"));
                continue;
            }
            if a.starts_with("--worker") || a.starts_with("--sql-pattern") {
                out.push(a);
                continue;
            }
        }
        if command
            .as_deref()
            .is_some_and(|c| WORKER_NAME_COMMANDS.contains(&c))
        {
            if let Some(rest) = a
                .strip_prefix("-worker")
                .filter(|r| r.is_empty() || r.starts_with('='))
            {
                out.push(format!("--worker{rest}"));
                continue;
            }
            if a == "-w" || a.starts_with("-w=") || a.starts_with("--worker") {
                out.push(a);
                continue;
            }
        }
        let member_cmd = command
            .as_deref()
            .is_some_and(|c| MEMBER_COMMANDS.contains(&c));
        if member_cmd && (a == "-w" || a == "-worker" || a == "--worker") {
            out.push(if a == "-w" { a } else { "--worker".into() });
            continue;
        }
        if command
            .as_deref()
            .is_some_and(|c| OWN_W_COMMANDS.contains(&c))
            && (a == "-w" || a.starts_with("-w="))
        {
            out.push(a);
            continue;
        }
        if a == "-w" {
            out.push("-s".into());
            continue;
        }
        if let Some(rest) = a.strip_prefix('-')
            && !rest.starts_with('-')
        {
            let name = rest.split('=').next().unwrap_or(rest);
            if SINGLE_DASH_LONG.contains(&name) {
                let fixed = if name == "worker" {
                    format!("--source{}", &rest[name.len()..])
                } else {
                    format!("-{a}")
                };
                out.push(fixed);
                continue;
            }
        }
        if let Some(rest) = a.strip_prefix("--worker") {
            out.push(format!("--source{rest}"));
            continue;
        }
        out.push(a);
    }
    out
}

/// After break-ddl-lock's `-s`: whether a name follows it and another positional (the task)
/// comes later, so `-s` names sources rather than meaning --skip.
fn sources_follow(rest: &[String]) -> bool {
    const WITH_VALUE: &[&str] = &[
        "-w",
        "-worker",
        "--worker",
        "-i",
        "-remove-id",
        "--remove-id",
        "-s",
        "--source",
    ];
    let mut positionals = 0;
    let mut first_is_name = false;
    let mut j = 0;
    while j < rest.len() {
        let t = &rest[j];
        if t.starts_with('-') {
            j += if WITH_VALUE.contains(&t.as_str()) {
                2
            } else {
                1
            };
            continue;
        }
        if j == 0 {
            first_is_name = true;
        }
        positionals += 1;
        j += 1;
    }
    first_is_name && positionals >= 2
}

#[cfg(test)]
mod tests {
    use super::normalize;

    fn n(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn sql_commands_keep_w_as_worker_and_s_as_the_pattern() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["dmctl", "sql-skip", "-w", "w1", "-s", "~ADD", "t"],
                &[
                    "dmctl",
                    "sql-skip",
                    "--worker",
                    "w1",
                    "--sql-pattern",
                    "~ADD",
                    "t",
                ],
            ),
            (
                &[
                    "dmctl",
                    "-master-addr",
                    "x:1",
                    "sql-replace",
                    "-worker=w1",
                    "-b",
                    "b.1:4",
                    "t",
                    "ALTER TABLE d.t ADD c INT",
                ],
                &[
                    "dmctl",
                    "--master-addr",
                    "x:1",
                    "sql-replace",
                    "--worker=w1",
                    "-b",
                    "b.1:4",
                    "t",
                    "ALTER TABLE d.t ADD c INT",
                ],
            ),
            (
                &[
                    "dmctl",
                    "sql-inject",
                    "--worker",
                    "w1",
                    "t",
                    "ALTER TABLE d.t ADD c INT",
                    "-master-addr",
                    "x:1",
                ],
                &[
                    "dmctl",
                    "sql-inject",
                    "--worker",
                    "w1",
                    "t",
                    "ALTER TABLE d.t ADD c INT",
                    "--master-addr",
                    "x:1",
                ],
            ),
            // break-ddl-lock: -s is --skip, or names sources when a name and the task follow
            (
                &["dmctl", "break-ddl-lock", "-w", "w1", "t", "-s"],
                &["dmctl", "break-ddl-lock", "--worker", "w1", "t", "--skip"],
            ),
            (
                &["dmctl", "break-ddl-lock", "-s", "s1", "t", "-e"],
                &["dmctl", "break-ddl-lock", "--source", "s1", "t", "--exec"],
            ),
            (
                &["dmctl", "break-ddl-lock", "-w", "w1", "-s", "t"],
                &["dmctl", "break-ddl-lock", "--worker", "w1", "--skip", "t"],
            ),
            // elsewhere -w stays DM v1's source flag
            (
                &["dmctl", "handle-error", "-w", "s1", "t", "skip"],
                &["dmctl", "handle-error", "-s", "s1", "t", "skip"],
            ),
        ];
        for (args, want) in cases {
            assert_eq!(n(args), *want, "{args:?}");
        }
    }

    #[test]
    fn single_dash_long_flags_become_double() {
        assert_eq!(
            n(&["dmctl", "-master-addr", "x:1"]),
            ["dmctl", "--master-addr", "x:1"]
        );
        assert_eq!(
            n(&["dmctl", "-master-addr=x:1"]),
            ["dmctl", "--master-addr=x:1"]
        );
        assert_eq!(
            n(&["dmctl", "-encrypt", "123"]),
            ["dmctl", "--encrypt", "123"]
        );
        assert_eq!(n(&["dmctl", "-V"]), ["dmctl", "-V"]);
        assert_eq!(n(&["dmctl", "encrypt", "-x"]), ["dmctl", "encrypt", "-x"]);
    }

    #[test]
    fn worker_flag_means_source() {
        assert_eq!(
            n(&["dmctl", "start-task", "-w", "s1", "t.yaml"]),
            ["dmctl", "start-task", "-s", "s1", "t.yaml"]
        );
        assert_eq!(n(&["dmctl", "-worker=s1"]), ["dmctl", "--source=s1"]);
        assert_eq!(n(&["dmctl", "--worker", "s1"]), ["dmctl", "--source", "s1"]);
    }

    #[test]
    fn member_commands_keep_their_worker_flag() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["dmctl", "list-member", "--worker"],
                &["dmctl", "list-member", "--worker"],
            ),
            (
                &["dmctl", "list-member", "-worker", "-n", "w1"],
                &["dmctl", "list-member", "--worker", "-n", "w1"],
            ),
            (
                &[
                    "dmctl",
                    "-master-addr",
                    "x:1",
                    "offline-member",
                    "-w",
                    "--name",
                    "w1",
                ],
                &[
                    "dmctl",
                    "--master-addr",
                    "x:1",
                    "offline-member",
                    "-w",
                    "--name",
                    "w1",
                ],
            ),
            (
                &[
                    "dmctl",
                    "--master-addr",
                    "list-member",
                    "query-status",
                    "-w",
                    "s1",
                ],
                &[
                    "dmctl",
                    "--master-addr",
                    "list-member",
                    "query-status",
                    "-s",
                    "s1",
                ],
            ),
            (
                &["dmctl", "--rpc-timeout=5s", "pause-task", "-w", "s1", "t"],
                &["dmctl", "--rpc-timeout=5s", "pause-task", "-s", "s1", "t"],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(n(input), *want, "{input:?}");
        }
    }

    #[test]
    fn operate_source_keeps_w_as_the_worker() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["dmctl", "operate-source", "create", "s.yaml", "-w", "w1"],
                &["dmctl", "operate-source", "create", "s.yaml", "-w", "w1"],
            ),
            (
                &["dmctl", "operate-source", "create", "s.yaml", "-worker=w1"],
                &["dmctl", "operate-source", "create", "s.yaml", "--worker=w1"],
            ),
            (
                &[
                    "dmctl",
                    "operate-source",
                    "create",
                    "s.yaml",
                    "--worker",
                    "w1",
                ],
                &[
                    "dmctl",
                    "operate-source",
                    "create",
                    "s.yaml",
                    "--worker",
                    "w1",
                ],
            ),
            // …and -s stays the source flag there.
            (
                &["dmctl", "operate-source", "show", "-s", "s1"],
                &["dmctl", "operate-source", "show", "-s", "s1"],
            ),
        ];
        for (args, want) in cases {
            assert_eq!(n(args), *want, "{args:?}");
        }
    }

    #[test]
    fn check_task_keeps_w_as_its_warn_count() {
        assert_eq!(
            n(&["dmctl", "check-task", "t.yaml", "-e", "100", "-w", "1"]),
            ["dmctl", "check-task", "t.yaml", "-e", "100", "-w", "1"]
        );
        assert_eq!(
            n(&[
                "dmctl",
                "-master-addr",
                "x:1",
                "check-task",
                "-w=2",
                "t.yaml"
            ]),
            [
                "dmctl",
                "--master-addr",
                "x:1",
                "check-task",
                "-w=2",
                "t.yaml"
            ]
        );
    }

    #[test]
    fn nothing_after_double_dash_is_touched() {
        assert_eq!(
            n(&["dmctl", "decrypt", "--", "-encrypt"]),
            ["dmctl", "decrypt", "--", "-encrypt"]
        );
    }
}
