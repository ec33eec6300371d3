//! Tests of the command line and config file merge.
use super::*;

fn file(text: &str) -> Result<FileSettings, SettingsError> {
    FileSettings::parse(text, Path::new("test.toml"))
}

fn merged(args: &[&str], text: &str) -> Settings {
    let mut argv = vec!["chat-server"];
    argv.extend_from_slice(args);
    let matches = Settings::command().try_get_matches_from(argv).unwrap();
    let mut s = Settings::from_arg_matches(&matches).unwrap();
    s.merge_file(&file(text).unwrap(), &matches);
    s.check().unwrap();
    s
}

#[test]
fn defaults_match_server_config_defaults() {
    let s = Settings::parse_args(["chat-server"]).unwrap();
    let (got, want) = (s.server_config(), ServerConfig::default());
    assert_eq!(got.bind, want.bind);
    assert_eq!(got.limits, want.limits);
    assert_eq!(got.max_outbound_bytes, want.max_outbound_bytes);
    assert_eq!(got.max_connections, want.max_connections);
    assert_eq!(got.max_per_address, want.max_per_address);
    assert_eq!(got.exempt_loopback, want.exempt_loopback);
    assert_eq!(
        (got.login_timeout, got.idle_ping, got.idle_timeout),
        (want.login_timeout, want.idle_ping, want.idle_timeout)
    );
    assert_eq!((got.rate_limit.rate, got.rate_limit.burst), (want.rate_limit.rate, want.rate_limit.burst));
    assert_eq!((got.tls.enabled, got.tls.tls_only), (want.tls.enabled, want.tls.tls_only));
    assert_eq!((&got.tls.cert, &got.tls.key), (&want.tls.cert, &want.tls.key));
    assert_eq!((got.shards, got.metrics), (want.shards, want.metrics));
}

#[test]
fn file_overrides_defaults_and_command_line_overrides_file() {
    let text = r#"
        port = 6000
        bind = "127.0.0.1"
        max_frame = 4096
        tls_only = true
        metrics = "127.0.0.1:9555"
        msg_rate = 5
        log_level = "debug"
    "#;
    let s = merged(&["--port", "7000", "--tls-only=false", "--log-level", "warn"], text);
    assert_eq!(s.port, 7000, "command line wins");
    assert_eq!(s.bind, IpAddr::from([127, 0, 0, 1]), "file beats default");
    assert_eq!(s.max_frame, 4096);
    assert!(!s.tls_only, "--tls-only=false overrides the file's true");
    assert_eq!(s.metrics, MetricsAddr(Some("127.0.0.1:9555".parse().unwrap())));
    assert_eq!(s.msg_rate, 5.0, "an integer is accepted for a float");
    assert_eq!(s.log_level, "warn");
    assert_eq!(s.max_connections, 100_000, "untouched keys keep their defaults");
    let c = s.server_config();
    assert_eq!(c.bind, "127.0.0.1:7000".parse().unwrap());
    assert_eq!(c.limits.max_frame, 4096);
    assert_eq!(c.metrics, Some("127.0.0.1:9555".parse().unwrap()));
}

#[test]
fn bare_flags_still_work_and_metrics_can_be_turned_off() {
    let s = merged(&["--no-tls", "--limit-loopback", "--metrics", "off"], "metrics = \"127.0.0.1:1\"");
    assert!(s.no_tls && s.limit_loopback);
    assert_eq!(s.metrics, MetricsAddr(None));
    assert!(!s.server_config().tls.enabled);
}

#[test]
fn feature_settings_map_to_the_config_and_bad_modes_are_named() {
    let s = merged(&["--auth", "passkey", "--history", "memory"], "passkey = \"sesame\"\nhistory_len = 7");
    let f = s.server_config().services;
    assert_eq!((f.auth, f.history, f.history_len), (AuthMode::Passkey, HistoryMode::Memory, 7));
    assert_eq!(f.passkey.as_deref(), Some("sesame"));
    assert_eq!((f.admin_user, f.admin_password), (None, None), "empty means unset");
    let err = Settings::parse_args(["chat-server", "--auth", "ldap"]).unwrap_err().to_string();
    assert!(err.contains("auth") && err.contains("ldap"), "{err}");
    let err = Settings::parse_args(["chat-server", "--admin-user", "root"]).unwrap_err().to_string();
    assert!(err.contains("admin_user"), "{err}");
}

#[test]
fn every_setting_has_a_config_key() {
    // A file setting every key parses, and each key is reported as set.
    let text = r#"
        port = 1
        bind = "::1"
        cert = "a.crt"
        key = "a.key"
        tls_only = false
        no_tls = true
        max_frame = 1024
        max_outbound = 2048
        max_http_head = 4096
        max_connections = 10
        max_per_address = 2
        limit_loopback = true
        login_timeout = 3
        idle_ping = 4
        msg_rate = 0.5
        msg_burst = 2.0
        shards = 2
        metrics = "[::1]:9555"
        log_level = "trace"
        log_queue = 64
        presence_limit = 10
        presence_interval_ms = 500
        auth = "passkey"
        passkey = "k"
        history = "memory"
        history_len = 5
        data_dir = "d"
        admin_user = "root"
        admin_password = "pw"
        console = true
        no_files = true
        max_file_size = 1024
        files_quota = 4096
        upload_idle = 5
        list_page = 10
        list_page_bytes = 2048
        outbound_burst = 4096
        slow_grace = 1
        max_files_per_user = 3
        max_files = 9
        auth_workers = 2
        auth_queue = 8
        auth_queue_per_address = 1
        history_cache = 1048576
        history_retain_days = 7
        history_retain_per_room = 100
        cluster = "nats://127.0.0.1:4222"
        node = "n1"
        cluster_name_ttl = 5
        cluster_queue = 16
        cluster_inflight = 64
        advertise = "chat1.lan:5555"
        cluster_file_timeout = 7
        cluster_replicas = 3
    "#;
    let f = file(text).unwrap();
    macro_rules! all_set { ($($k:ident),*) => { $( assert!(f.has(stringify!($k)), stringify!($k)); )* }; }
    each_setting!(all_set);
    // And every option of the command line (but --config) is a key.
    for arg in Settings::command().get_arguments() {
        let id = arg.get_id().as_str();
        assert!(id == "config" || f.has(id), "--{id} has no config key");
    }
}

#[test]
fn example_file_lists_every_key_with_its_default() {
    let example = include_str!("../../chat-server.example.toml");
    assert!(file(example).unwrap() == FileSettings::default(), "everything is commented out");
    // Uncomment every `#key = value` line.
    let uncommented: String = example
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')) => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let f = file(&uncommented).unwrap();
    macro_rules! all_set { ($($k:ident),*) => { $( assert!(f.has(stringify!($k)), "example lacks {}", stringify!($k)); )* }; }
    each_setting!(all_set);
    let matches = Settings::command().try_get_matches_from(["chat-server", "--log-level", "info"]).unwrap();
    let defaults = Settings::from_arg_matches(&matches).unwrap();
    let mut s = defaults.clone();
    s.merge_file(&f, &Settings::command().try_get_matches_from(["chat-server"]).unwrap());
    assert_eq!(s, defaults, "the example's values are the defaults");
}

#[test]
fn unknown_key_is_named() {
    let err = file("port = 5555\nmax_conections = 10\n").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SettingsError::Parse { line: Some(2), .. }), "{msg}");
    assert!(msg.contains("max_conections") && msg.contains("test.toml"), "{msg}");
}

#[test]
fn wrong_type_is_named() {
    let err = file("bind = \"127.0.0.1\"\nport = \"five\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("key `port`") && msg.contains("line 2"), "{msg}");
    let msg = file("metrics = \"localhost\"").unwrap_err().to_string();
    assert!(msg.contains("key `metrics`") && msg.contains("or \"off\""), "{msg}");
    let msg = file("port = 70000").unwrap_err().to_string();
    assert!(msg.contains("key `port`"), "{msg}");
    let msg = file("port = [").unwrap_err().to_string();
    assert!(msg.contains("test.toml, line 1"), "{msg}");
}

#[test]
fn out_of_range_names_key_and_origin() {
    let dir = std::env::temp_dir().join(format!("chatproto-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("range.toml");
    std::fs::write(&path, "msg_burst = 0.5\n").unwrap();
    let err = Settings::parse_args(["chat-server", "--config", path.to_str().unwrap()]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`msg_burst`") && msg.contains("range.toml"), "{msg}");
    let err = Settings::parse_args(["chat-server", "--idle-ping", "0"]).unwrap_err();
    assert!(err.to_string().contains("`idle_ping` (--idle-ping)"), "{err}");
    let err = Settings::parse_args(["chat-server", "--tls-only", "--no-tls"]).unwrap_err();
    assert!(err.to_string().contains("cannot both"), "{err}");
    let err = Settings::parse_args(["chat-server", "--config", "/nonexistent/chat.toml"]).unwrap_err();
    assert!(err.to_string().contains("cannot read config file /nonexistent/chat.toml"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cluster_settings_need_a_node_name_and_become_a_cluster_config() {
    assert!(Settings::parse_args(["chat-server", "--cluster", "nats://127.0.0.1:4222"]).is_err(), "no --node");
    let bad_node = ["chat-server", "--cluster", "nats://127.0.0.1:4222", "--node", "a.b"];
    assert!(Settings::parse_args(bad_node).is_err(), "a dot in a node name");
    assert!(Settings::parse_args(["chat-server", "--cluster", "nats://h:1", "--node", "a", "--cluster-name-ttl", "1"])
        .is_err());
    let s = Settings::parse_args(["chat-server", "--cluster", "nats://h:1, nats://g:2", "--node", "a"]).unwrap();
    let c = s.server_config().cluster.expect("a cluster node");
    assert_eq!(
        (c.servers, c.node.as_str(), c.name_ttl.as_secs(), c.queue),
        (vec!["nats://h:1".into(), "nats://g:2".into()], "a", 10, 4096)
    );
    assert!(Settings::parse_args(["chat-server"]).unwrap().server_config().cluster.is_none());
    let err =
        Settings::parse_args(["chat-server", "--cluster", "nats://h:1", "--node", "a", "--advertise", "http://x"]);
    assert!(err.unwrap_err().to_string().contains("--advertise"), "a scheme is refused");
    let args = ["chat-server", "--cluster", "nats://h:1", "--node", "a", "--advertise", "chat1.lan:5555"];
    let c = Settings::parse_args(args).unwrap().server_config().cluster.expect("a cluster node");
    assert_eq!(c.advertise.live(), ["chat1.lan:5555"]);
}
