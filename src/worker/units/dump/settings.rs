//! The Dump unit's settings: the instance's resolved `mydumper` block (DM's `MydumperConfig`)
//! with its `extra-args` applied, the way DM builds dumpling's config.
//!
//! - `chunk-filesize`: a bare integer is MiB, anything else a human size (`64MiB`, `1.5G`,
//!   `100kb`; binary units, as docker's `RAMInBytes`); `-F` in extra-args the same.
//! - `statement-size` 0 → 1 000 000 bytes (dumpling's default); `rows` 0 → 200 000 (DM forces it).
//! - `extra-args`: split like a shell (quotes group words: `--where "id > 5"`); understood: `-t/--threads`, `-F/--filesize`, `-s/--statement-size`, `-r/--rows`, `--where`,
//!   `-W/--no-views[=bool]`, `--consistency auto|flush|none`, `--no-locks`. Anything else is a
//!   warning (DM logs "parsed some unsupported arguments" and goes on), never an error.
//!
//! Pure: no I/O. Called by [`super::DumpUnit`]'s `init`.

use crate::config::task::MydumperConfig;

/// dumpling's default statement size.
pub const DEFAULT_STATEMENT_SIZE: u64 = 1_000_000;
/// DM's forced `rows`.
pub const DEFAULT_ROWS: u64 = 200_000;
/// DM's default chunk-filesize: 64 MiB.
pub const DEFAULT_FILE_SIZE: u64 = 64 << 20;
/// The most dump connections a task may ask for.
pub const MAX_THREADS: usize = 128;

/// How the dump makes its connections' snapshots agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// `FLUSH TABLES WITH READ LOCK` while the connections open their snapshots (`auto` and
    /// `flush` on MariaDB).
    Flush,
    /// No lock: the binlog location is read before and after the connections open their
    /// snapshots (`none`, `--no-locks`).
    None,
}

/// The Dump unit's effective settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpSettings {
    /// Dump connections.
    pub threads: usize,
    /// A new data file when a file reaches this many bytes.
    pub file_size: u64,
    /// A new INSERT when a statement reaches this many bytes.
    pub statement_size: u64,
    /// Rows per chunk (tables with an integer key).
    pub rows: u64,
    /// `--where`: a condition every dumped row satisfies (empty: none).
    pub r#where: String,
    pub consistency: Consistency,
    /// Dump views (the `-schema.sql` placeholder and `-schema-view.sql`).
    pub views: bool,
}

impl Default for DumpSettings {
    fn default() -> Self {
        DumpSettings {
            threads: 4,
            file_size: DEFAULT_FILE_SIZE,
            statement_size: DEFAULT_STATEMENT_SIZE,
            rows: DEFAULT_ROWS,
            r#where: String::new(),
            consistency: Consistency::Flush,
            views: true,
        }
    }
}

/// Parses a size as DM parses `chunk-filesize` and dumpling `-F`: a bare integer is MiB,
/// otherwise a number with an optional binary unit (`k`, `m`, `g`, `t`, `p`, optionally
/// followed by `i` and/or `b`, any case, one optional space).
pub fn parse_file_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(DEFAULT_FILE_SIZE);
    }
    if let Ok(mib) = s.parse::<u64>() {
        return mib
            .checked_mul(1 << 20)
            .ok_or_else(|| format!("file size {s:?} is too large"));
    }
    ram_in_bytes(s).ok_or_else(|| format!("failed to parse file size from {s:?}"))
}

/// docker/go-units `RAMInBytes`: `^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`, binary units.
fn ram_in_bytes(s: &str) -> Option<u64> {
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.contains("..") {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let mut unit = rest.strip_prefix(' ').unwrap_or(rest).chars().peekable();
    let mul: u64 = match unit.peek().map(|c| c.to_ascii_lowercase()) {
        Some('k') => 1 << 10,
        Some('m') => 1 << 20,
        Some('g') => 1 << 30,
        Some('t') => 1 << 40,
        Some('p') => 1 << 50,
        _ => 1,
    };
    if mul != 1 {
        unit.next();
    }
    if unit.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        unit.next();
    }
    if unit.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        unit.next();
    }
    if unit.next().is_some() {
        return None;
    }
    let bytes = value * mul as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return None;
    }
    Some(bytes as u64)
}

/// Splits `extra-args` like a shell (DM's `ParseArgLikeBash`): words separated by white space,
/// `'…'` and `"…"` group (and are removed), a backslash outside single quotes takes the next
/// character literally. `--where "id > 5"` gives `--where`, `id > 5`.
pub fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// A boolean flag value as pflag reads it.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl DumpSettings {
    /// The settings of an instance's `mydumper` block (`None`: DM's defaults). Returns the
    /// warnings to log (unknown or unsupported extra arguments); an invalid size is an error.
    pub fn from_config(
        cfg: Option<&MydumperConfig>,
    ) -> Result<(DumpSettings, Vec<String>), String> {
        let default_cfg = MydumperConfig::default();
        let cfg = cfg.unwrap_or(&default_cfg);
        let mut s = DumpSettings {
            threads: if cfg.threads > 0 {
                (cfg.threads as usize).min(MAX_THREADS)
            } else {
                4
            },
            file_size: parse_file_size(&cfg.chunk_filesize)
                .map_err(|e| format!("invalid `chunk-filesize`: {e}"))?,
            statement_size: cfg.statement_size,
            rows: cfg.rows,
            r#where: cfg.r#where.trim().to_string(),
            ..DumpSettings::default()
        };
        let warnings = s.apply_extra_args(&cfg.extra_args)?;
        if s.statement_size == 0 {
            s.statement_size = DEFAULT_STATEMENT_SIZE;
        }
        if s.rows == 0 {
            s.rows = DEFAULT_ROWS;
        }
        if s.file_size == 0 {
            s.file_size = DEFAULT_FILE_SIZE;
        }
        Ok((s, warnings))
    }

    /// Applies dumpling flags from `extra-args`; returns warnings for what it does not apply.
    /// A bad value of a known flag (`-t x`, `-F 12Q`) is an error.
    pub fn apply_extra_args(&mut self, extra: &str) -> Result<Vec<String>, String> {
        let args = split_args(extra);
        let mut warnings = Vec::new();
        let mut consistency: Option<String> = None;
        let mut no_locks = false;
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            // `--name=value`, `--name value`, `-x value`, `-xvalue`.
            let (name, inline): (String, Option<String>) =
                if let Some(long) = arg.strip_prefix("--") {
                    match long.split_once('=') {
                        Some((n, v)) => (n.to_string(), Some(v.to_string())),
                        None => (long.to_string(), None),
                    }
                } else if let Some(short) = arg.strip_prefix('-')
                    && let Some(c) = short.chars().next()
                {
                    let long = match c {
                        't' => "threads",
                        'F' => "filesize",
                        's' => "statement-size",
                        'r' => "rows",
                        'W' => "no-views",
                        'B' => "database",
                        'T' => "tables-list",
                        'f' => "filter",
                        'o' => "output",
                        _ => "",
                    };
                    let rest = &short[c.len_utf8()..];
                    let rest = rest.strip_prefix('=').unwrap_or(rest);
                    if long.is_empty() {
                        (short.to_string(), None)
                    } else {
                        (
                            long.to_string(),
                            (!rest.is_empty()).then(|| rest.to_string()),
                        )
                    }
                } else {
                    warnings.push(format!(
                    "extra-args: ignoring {arg:?} (not a flag; parsed some unsupported arguments)"
                ));
                    continue;
                };
            let takes_value = matches!(
                name.as_str(),
                "threads"
                    | "filesize"
                    | "statement-size"
                    | "rows"
                    | "where"
                    | "consistency"
                    | "database"
                    | "tables-list"
                    | "filter"
                    | "snapshot"
                    | "ca"
                    | "cert"
                    | "key"
                    | "output"
            );
            let value = if takes_value {
                match inline {
                    Some(v) => v,
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].clone()
                    }
                    None => return Err(format!("extra-args: flag --{name} needs a value")),
                }
            } else {
                inline.unwrap_or_else(|| "true".into())
            };
            let num = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("extra-args: invalid value {v:?} for --{name}"))
            };
            match name.as_str() {
                "threads" => {
                    let n = num(&value)?;
                    if n == 0 {
                        return Err("extra-args: --threads must be at least 1".into());
                    }
                    self.threads = (n as usize).min(MAX_THREADS);
                }
                "filesize" => {
                    self.file_size =
                        parse_file_size(&value).map_err(|e| format!("extra-args: {e}"))?
                }
                "statement-size" => self.statement_size = num(&value)?,
                "rows" => self.rows = num(&value)?,
                "where" => self.r#where = value.trim().to_string(),
                "no-views" => match parse_bool(&value) {
                    Some(b) => self.views = !b,
                    None => return Err(format!("extra-args: invalid value {value:?} for --no-views")),
                },
                "no-locks" => match parse_bool(&value) {
                    Some(b) => no_locks = b,
                    None => return Err(format!("extra-args: invalid value {value:?} for --no-locks")),
                },
                "consistency" => consistency = Some(value.to_ascii_lowercase()),
                "database" | "tables-list" | "filter" | "snapshot" | "ca" | "cert" | "key"
                | "output" => warnings.push(format!(
                    "extra-args: --{name} is not supported by dm-rs and is ignored (the task's block-allow-list and source settings decide)"
                )),
                _ => warnings.push(format!(
                    "extra-args: unknown flag {arg:?} ignored (parsed some unsupported arguments)"
                )),
            }
        }
        match (consistency.as_deref(), no_locks) {
            (Some(c), true) if c != "none" => {
                return Err(format!(
                    "extra-args: --no-locks conflicts with --consistency {c}"
                ));
            }
            (_, true) | (Some("none"), _) => self.consistency = Consistency::None,
            (None | Some("auto") | Some("flush"), false) => self.consistency = Consistency::Flush,
            (Some(c @ ("lock" | "snapshot")), false) => {
                warnings.push(format!(
                    "extra-args: --consistency {c} is not supported on MariaDB by dm-rs; using flush (FLUSH TABLES WITH READ LOCK)"
                ));
                self.consistency = Consistency::Flush;
            }
            (Some(c), false) => {
                return Err(format!(
                    "extra-args: invalid --consistency {c:?} (auto, flush, lock, snapshot or none)"
                ));
            }
        }
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sizes_parse_as_dm() {
        let mib = 1u64 << 20;
        let cases: [(&str, Option<u64>); 14] = [
            ("", Some(64 * mib)),
            ("64", Some(64 * mib)),
            ("1", Some(mib)),
            ("64MiB", Some(64 * mib)),
            ("64M", Some(64 * mib)),
            ("64mb", Some(64 * mib)),
            ("64 MiB", Some(64 * mib)),
            ("1.5G", Some(3 * (1 << 29))),
            ("100kb", Some(100 << 10)),
            ("4096b", Some(4096)),
            ("2.5", Some(2)),
            ("64X", None),
            ("abc", None),
            ("-1", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_file_size(s).ok(), want, "{s:?}");
        }
    }

    #[test]
    fn args_split_like_a_shell() {
        let cases: [(&str, &[&str]); 6] = [
            ("", &[]),
            ("  -t  4 ", &["-t", "4"]),
            ("--where 'a b'", &["--where", "a b"]),
            ("--where=\"a 'b' c\"", &["--where=a 'b' c"]),
            ("x\\ y", &["x y"]),
            ("''", &[""]),
        ];
        for (s, want) in cases {
            assert_eq!(split_args(s), want, "{s}");
        }
    }

    #[test]
    fn config_defaults_follow_dm() {
        let (s, w) = DumpSettings::from_config(None).unwrap();
        assert!(w.is_empty());
        assert_eq!(s, DumpSettings::default());
        let cfg = MydumperConfig {
            threads: 2,
            chunk_filesize: "8MiB".into(),
            statement_size: 5000,
            rows: 10,
            r#where: " id > 3 ".into(),
            ..MydumperConfig::default()
        };
        let (s, _) = DumpSettings::from_config(Some(&cfg)).unwrap();
        assert_eq!(
            (
                s.threads,
                s.file_size,
                s.statement_size,
                s.rows,
                s.r#where.as_str()
            ),
            (2, 8 << 20, 5000, 10, "id > 3")
        );
        let bad = MydumperConfig {
            chunk_filesize: "lots".into(),
            ..MydumperConfig::default()
        };
        assert!(DumpSettings::from_config(Some(&bad)).is_err());
    }

    #[test]
    fn extra_args_table() {
        // (extra-args, check, number of warnings)
        type Check = fn(&DumpSettings) -> bool;
        let cases: Vec<(&str, Check, usize)> = vec![
            ("", |s| *s == DumpSettings::default(), 0),
            ("--no-views", |s| !s.views, 0),
            ("-W", |s| !s.views, 0),
            ("--no-views=false", |s| s.views, 0),
            (
                "--consistency none",
                |s| s.consistency == Consistency::None,
                0,
            ),
            (
                "--consistency=flush",
                |s| s.consistency == Consistency::Flush,
                0,
            ),
            (
                "--consistency auto",
                |s| s.consistency == Consistency::Flush,
                0,
            ),
            ("--no-locks", |s| s.consistency == Consistency::None, 0),
            (
                "--consistency lock",
                |s| s.consistency == Consistency::Flush,
                1,
            ),
            (
                "-r 1000 -s 2048",
                |s| s.rows == 1000 && s.statement_size == 2048,
                0,
            ),
            (
                "--rows=7 --statement-size=9",
                |s| s.rows == 7 && s.statement_size == 9,
                0,
            ),
            ("-r5", |s| s.rows == 5, 0),
            ("-F 1MiB", |s| s.file_size == 1 << 20, 0),
            ("-F 2", |s| s.file_size == 2 << 20, 0),
            ("--filesize=3KiB", |s| s.file_size == 3 << 10, 0),
            ("-t 8", |s| s.threads == 8, 0),
            ("--threads=3", |s| s.threads == 3, 0),
            ("--where \"id>5\"", |s| s.r#where == "id>5", 0),
            ("--where='a<3'", |s| s.r#where == "a<3", 0),
            (
                "--where \"id > 5 AND c = 'x y'\"",
                |s| s.r#where == "id > 5 AND c = 'x y'",
                0,
            ),
            ("--foo -t 2", |s| s.threads == 2, 1),
            ("-B db -T db.t", |s| *s == DumpSettings::default(), 2),
            ("stray", |s| *s == DumpSettings::default(), 1),
        ];
        for (args, check, warns) in cases {
            let mut s = DumpSettings::default();
            let w = s
                .apply_extra_args(args)
                .unwrap_or_else(|e| panic!("{args}: {e}"));
            assert!(check(&s), "{args}: {s:?}");
            assert_eq!(w.len(), warns, "{args}: {w:?}");
        }
        for bad in [
            "-t x",
            "-t 0",
            "-F 12Q",
            "--rows",
            "--consistency sometimes",
            "--no-locks --consistency flush",
            "--no-views=maybe",
        ] {
            let mut s = DumpSettings::default();
            assert!(s.apply_extra_args(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extra_args_override_the_block_and_zero_means_default() {
        let cfg = MydumperConfig {
            rows: 10,
            extra_args: "-r 0 -s 0".into(),
            ..MydumperConfig::default()
        };
        let (s, _) = DumpSettings::from_config(Some(&cfg)).unwrap();
        assert_eq!(
            (s.rows, s.statement_size),
            (DEFAULT_ROWS, DEFAULT_STATEMENT_SIZE)
        );
    }
}
