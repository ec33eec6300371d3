//! The config file's side of the settings: its keys (every one optional, unknown ones refused)
//! and where in the text a parse error is.

use super::{MetricsAddr, SettingsError};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The config file's contents: every key optional, unknown keys refused.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub port: Option<u16>,
    pub bind: Option<IpAddr>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub tls_only: Option<bool>,
    pub no_tls: Option<bool>,
    pub max_frame: Option<usize>,
    pub max_outbound: Option<usize>,
    pub max_http_head: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_per_address: Option<u32>,
    pub limit_loopback: Option<bool>,
    pub login_timeout: Option<u64>,
    pub idle_ping: Option<u64>,
    pub msg_rate: Option<f64>,
    pub msg_burst: Option<f64>,
    pub shards: Option<usize>,
    pub metrics: Option<MetricsAddr>,
    pub log_level: Option<String>,
    pub log_queue: Option<usize>,
    pub presence_limit: Option<usize>,
    pub presence_interval_ms: Option<u64>,
    pub auth: Option<String>,
    pub passkey: Option<String>,
    pub history: Option<String>,
    pub history_len: Option<usize>,
    pub history_cache: Option<usize>,
    pub history_retain_days: Option<u64>,
    pub history_retain_per_room: Option<usize>,
    pub data_dir: Option<PathBuf>,
    pub admin_user: Option<String>,
    pub admin_password: Option<String>,
    pub console: Option<bool>,
    pub no_files: Option<bool>,
    pub max_file_size: Option<u64>,
    pub files_quota: Option<u64>,
    pub upload_idle: Option<u64>,
    pub list_page: Option<usize>,
    pub list_page_bytes: Option<usize>,
    pub outbound_burst: Option<usize>,
    pub slow_grace: Option<u64>,
    pub max_files_per_user: Option<u64>,
    pub max_files: Option<u64>,
    pub auth_workers: Option<usize>,
    pub auth_queue: Option<usize>,
    pub auth_queue_per_address: Option<usize>,
    pub cluster: Option<String>,
    pub node: Option<String>,
    pub cluster_name_ttl: Option<u64>,
    pub cluster_queue: Option<usize>,
    pub cluster_inflight: Option<usize>,
    pub advertise: Option<String>,
    pub cluster_file_timeout: Option<u64>,
    pub cluster_replicas: Option<usize>,
}

impl FileSettings {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<FileSettings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read { path: path.into(), source })?;
        FileSettings::parse(&text, path)
    }

    /// Parses config text; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<FileSettings, SettingsError> {
        toml::from_str(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => locate(text, span.start),
                None => (None, None),
            };
            SettingsError::Parse { path: path.into(), line, key, message: e.message().trim_end().to_string() }
        })
    }

    /// Whether the file sets `key`.
    pub(super) fn has(&self, key: &str) -> bool {
        macro_rules! has {
            ($($f:ident),*) => { match key { $( stringify!($f) => self.$f.is_some(), )* _ => false } };
        }
        each_setting!(has)
    }
}

/// The 1-based line of byte `at`, and the key assigned on that line if it is a `key = value` line.
fn locate(text: &str, at: usize) -> (Option<usize>, Option<String>) {
    let at = at.min(text.len());
    let line_no = text[..at].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let key = line.split_once('=').map(|(k, _)| k.trim().trim_matches(|c| c == '"' || c == '\'').to_string());
    let key = key.filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    (Some(line_no), key)
}
