//! The source file (`source.yaml`, `operate-source create`) as DM reads it.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, code};
use super::task::{DbConfig, FilterRule, MAX_SOURCE_ID_LEN};
use super::yaml::{self as y, PosIndex};
use crate::password;

/// Relay log purge settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PurgeConfig {
    /// Seconds between purge runs.
    pub interval: i64,
    /// Hours a relay file is kept (0 = forever).
    pub expires: i64,
    /// GB of free disk below which old files are purged.
    pub remain_space: i64,
}

impl Default for PurgeConfig {
    fn default() -> Self {
        PurgeConfig {
            interval: 3600,
            expires: 0,
            remain_space: 15,
        }
    }
}

/// Auto-resume (task checker) settings. Durations are Go duration strings, e.g. `5m`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct CheckerConfig {
    #[serde(deserialize_with = "y::boolean")]
    pub check_enable: bool,
    #[serde(deserialize_with = "y::string")]
    pub backoff_rollback: String,
    #[serde(deserialize_with = "y::string")]
    pub backoff_max: String,
    #[serde(deserialize_with = "y::string")]
    pub check_interval: String,
    #[serde(deserialize_with = "y::string")]
    pub backoff_min: String,
    #[serde(deserialize_with = "y::boolean")]
    pub backoff_jitter: bool,
    pub backoff_factor: f64,
}

impl Default for CheckerConfig {
    fn default() -> Self {
        CheckerConfig {
            check_enable: true,
            backoff_rollback: "5m0s".into(),
            backoff_max: "5m0s".into(),
            check_interval: "5s".into(),
            backoff_min: "1s".into(),
            backoff_jitter: true,
            backoff_factor: 2.0,
        }
    }
}

/// An upstream MySQL/MariaDB source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SourceConfig {
    /// DM's OpenAPI switch to disable a source (default true). dm-rs has no OpenAPI: `false`
    /// is refused ([`SourceConfig::unsupported`]); `operate-source stop` removes a source.
    #[serde(deserialize_with = "y::boolean")]
    pub enable: bool,
    #[serde(deserialize_with = "y::boolean")]
    pub enable_gtid: bool,
    #[serde(deserialize_with = "y::boolean")]
    pub auto_fix_gtid: bool,
    #[serde(deserialize_with = "y::string")]
    pub relay_dir: String,
    #[serde(deserialize_with = "y::string")]
    pub meta_dir: String,
    #[serde(deserialize_with = "y::string")]
    pub flavor: String,
    #[serde(deserialize_with = "y::string")]
    pub charset: String,
    #[serde(deserialize_with = "y::boolean")]
    pub enable_relay: bool,
    #[serde(deserialize_with = "y::string")]
    pub relay_binlog_name: String,
    #[serde(deserialize_with = "y::string")]
    pub relay_binlog_gtid: String,
    #[serde(deserialize_with = "y::string")]
    pub source_id: String,
    pub from: DbConfig,
    pub purge: PurgeConfig,
    pub checker: CheckerConfig,
    /// 0 = chosen at start-up.
    pub server_id: u32,
    #[serde(deserialize_with = "y::map_or_null")]
    pub tracer: std::collections::BTreeMap<String, serde_norway::Value>,
    #[serde(deserialize_with = "y::boolean")]
    pub case_sensitive: bool,
    #[serde(deserialize_with = "y::map_or_null")]
    pub filters: Vec<FilterRule>,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            enable: true,
            enable_gtid: false,
            auto_fix_gtid: false,
            relay_dir: "relay-dir".into(),
            meta_dir: String::new(),
            flavor: String::new(),
            charset: String::new(),
            enable_relay: false,
            relay_binlog_name: String::new(),
            relay_binlog_gtid: String::new(),
            source_id: String::new(),
            from: DbConfig {
                port: 3306,
                ..DbConfig::default()
            },
            purge: PurgeConfig::default(),
            checker: CheckerConfig::default(),
            server_id: 0,
            tracer: Default::default(),
            case_sensitive: false,
            filters: Vec::new(),
        }
    }
}

/// Parses a Go duration such as `5m`, `1m30s`, `300ms`, `1h`.
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if n_end == 0 {
            return None;
        }
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[u_end..];
    }
    Some(std::time::Duration::from_secs_f64(total))
}

impl SourceConfig {
    /// DM's source `Adjust`/`Verify`: source-id present and short enough, a known flavor,
    /// valid checker durations.
    pub fn adjust(
        &mut self,
        ix: &PosIndex,
        _warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let at = |path: &str, c: u32, msg: String| ConfigError::new(c, msg).at(ix.best(path));
        if self.source_id.is_empty() {
            return Err(at(
                "source-id",
                code::EMPTY_SOURCE_ID,
                "empty source-id not valid".into(),
            ));
        }
        if self.source_id.chars().count() > MAX_SOURCE_ID_LEN {
            return Err(at(
                "source-id",
                code::LONG_SOURCE_ID,
                format!(
                    "too long source-id not valid: at most {MAX_SOURCE_ID_LEN} characters are allowed"
                ),
            ));
        }
        if let Some(sec) = self.from.security.as_mut() {
            sec.fold_base64("from.security")
                .map_err(|e| e.at(ix.best("from.security")))?;
            sec.check_pairs("from.security")
                .map_err(|e| e.at(ix.best("from.security")))?;
        }
        if self.from.port == 0 {
            self.from.port = 3306;
        }
        if !matches!(self.flavor.as_str(), "" | "mysql" | "mariadb") {
            return Err(at(
                "flavor",
                code::YAML,
                format!(
                    "flavor {:?} not supported: use mysql or mariadb (or leave it empty to detect)",
                    self.flavor
                ),
            ));
        }
        for (key, v) in [
            ("backoff-rollback", &self.checker.backoff_rollback),
            ("backoff-max", &self.checker.backoff_max),
            ("check-interval", &self.checker.check_interval),
            ("backoff-min", &self.checker.backoff_min),
        ] {
            if parse_go_duration(v).is_none() {
                return Err(at(
                    &format!("checker.{key}"),
                    code::YAML,
                    format!("checker.{key}: {v:?} is not a duration (e.g. 5m, 30s, 1h30m)"),
                ));
            }
        }
        if let (Some(max), Some(min)) = (
            parse_go_duration(&self.checker.backoff_max),
            parse_go_duration(&self.checker.backoff_min),
        ) && max < min
        {
            return Err(at(
                "checker.backoff-max",
                code::CHECKER_MAX_TOO_SMALL,
                format!(
                    "`backoff-max` value {} is less than `backoff-min` value {}: Please increase `backoff-max` config in task configuration file.",
                    self.checker.backoff_max, self.checker.backoff_min
                ),
            ));
        }
        Ok(())
    }

    /// The settings of this source dm-rs parses but cannot honour yet (see
    /// [`super::TaskConfig::unsupported`]): `from.security.cert-allowed-cn`, `enable: false`.
    pub fn unsupported(&self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        if !self.enable {
            out.push(ConfigError::new(
                code::UNSUPPORTED,
                format!(
                    "source {}: enable: false is DM's OpenAPI switch to disable a source, which dm-rs does not have; remove the key (or set it to true), and use `operate-source stop` to remove a source",
                    self.source_id
                ),
            ));
        }
        if self
            .from
            .security
            .as_ref()
            .is_some_and(|s| !s.cert_allowed_cn.is_empty())
        {
            out.push(ConfigError::new(
                code::UNSUPPORTED,
                format!(
                    "source {}: from.security.cert-allowed-cn is not supported by dm-rs yet: the server certificate is verified against ssl-ca and the host name, but its common name is not checked; remove cert-allowed-cn",
                    self.source_id
                ),
            ));
        }
        out
    }

    /// The normalised config as YAML with the password shown as `******`.
    pub fn to_yaml_masked(&self) -> String {
        let mut c = self.clone();
        c.from.mask_secrets();
        serde_norway::to_string(&c).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// The normalised config as YAML with the password DM-encrypted (master → worker).
    pub fn to_yaml_sealed(&self) -> String {
        let mut c = self.clone();
        c.from.password = password::encrypt(&c.from.plain_password()).unwrap_or_default();
        serde_norway::to_string(&c).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("5m"),
            Some(std::time::Duration::from_secs(300))
        );
        assert_eq!(
            parse_go_duration("1m30s"),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_go_duration("300ms"),
            Some(std::time::Duration::from_millis(300))
        );
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("m"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}
