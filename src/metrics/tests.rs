//! Unit tests of the parent module.

use super::*;
use std::collections::HashSet;

/// Every field set to a distinct value (a struct literal without `..`, so that a new field
/// fails to compile here until it is given a metric).
fn distinct() -> StatsSnapshot {
    StatsSnapshot {
        connections_open: 1001,
        connections_total: 1002,
        tls_connections: 1003,
        logins: 1004,
        bytes_in: 1005,
        bytes_out: 1006,
        frames_in: 1007,
        frames_out: 1008,
        room_msgs: 1009,
        deliveries: 1010,
        private_msgs: 1011,
        slow_consumer_disconnects: 1012,
        protocol_errors: 1013,
        accept_refusals: 1014,
        rate_limited: 1015,
        open_binary: 1016,
        open_json: 1017,
        open_tls: 1018,
        queued_bytes: 1019,
        open_websocket_tls: 1020,
        open_websocket: 1041,
        http_requests: 1022,
    }
}

/// Checks the exposition format: every sample's family has HELP and TYPE before it, each
/// family is declared once and its samples are contiguous, counters end in `_total`.
fn check_format(text: &str) -> Vec<(String, String, String)> {
    assert!(text.ends_with('\n'));
    let mut declared: Vec<(String, String)> = Vec::new();
    let mut seen_help = HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(seen_help.insert(name.to_string()), "HELP twice for {name}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(seen_help.contains(name), "TYPE before HELP for {name}");
            assert!(!declared.iter().any(|(n, _)| n == name), "TYPE twice for {name}");
            assert!(["counter", "gauge", "summary"].contains(&kind), "{line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter {name} should end in _total");
            }
            declared.push((name.to_string(), kind.to_string()));
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.strip_suffix('}').expect("closing brace")),
                None => (series, ""),
            };
            assert!(name.starts_with("chatproto_"), "{line}");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
            let (family, kind) = declared.last().expect("sample before any TYPE");
            let ok = name == family
                || (kind == "summary" && (name == format!("{family}_count") || name == format!("{family}_sum")));
            assert!(ok, "sample {name} is not in the current family {family}");
            assert!(value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value), "{line}");
            samples.push((name.to_string(), labels.to_string(), value.to_string()));
        }
    }
    samples
}

#[test]
fn every_snapshot_field_appears() {
    let s = distinct();
    let text = render(&s, &[s], &Extra::default());
    let samples = check_format(&text);
    // `open_websocket` (1041) is written as its plain part (1041 - 1020) beside the TLS part.
    for v in (1001..=1022).filter(|v| *v != 1021) {
        assert!(samples.iter().any(|(_, _, got)| got == &v.to_string()), "field with value {v} missing:\n{text}");
    }
    assert!(text.contains("chatproto_connections{protocol=\"websocket\",tls=\"false\"} 21\n"), "{text}");
    assert!(text.contains("chatproto_connections{protocol=\"websocket\",tls=\"true\"} 1020\n"), "{text}");
}

#[test]
fn labels_and_shards() {
    let mut a = distinct();
    a.connections_open = 3;
    a.queued_bytes = 100;
    let mut b = StatsSnapshot { connections_open: 4, queued_bytes: 50, ..StatsSnapshot::default() };
    b.open_binary = 1;
    let mut total = a;
    total.add(&b);
    let text =
        render(&total, &[a, b], &Extra { uptime_seconds: 12.5, history_write_latency_seconds: None, cluster: None });
    check_format(&text);
    for want in [
        "chatproto_connections_open 7\n",
        "chatproto_connections{protocol=\"binary\"} 1017\n",
        "chatproto_connections{protocol=\"json\"} 1017\n",
        "chatproto_connections_tls 1018\n",
        "chatproto_shard_connections_open{shard=\"0\"} 3\n",
        "chatproto_shard_connections_open{shard=\"1\"} 4\n",
        "chatproto_shard_queued_bytes{shard=\"1\"} 50\n",
        "chatproto_queued_bytes 150\n",
        "chatproto_shards 2\n",
        "chatproto_uptime_seconds 12.5\n",
        "# TYPE chatproto_logins_total counter\n",
        "# TYPE chatproto_connections gauge\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("history"), "no history summary without history");
}

#[test]
fn history_summary_when_present() {
    let extra = Extra { uptime_seconds: 1.0, history_write_latency_seconds: Some((4, 0.25)), cluster: None };
    let text = render(&StatsSnapshot::default(), &[], &extra);
    check_format(&text);
    assert!(text.contains("# TYPE chatproto_history_write_latency_seconds summary\n"), "{text}");
    assert!(text.contains("chatproto_history_write_latency_seconds_count 4\n"), "{text}");
    assert!(text.contains("chatproto_history_write_latency_seconds_sum 0.25\n"), "{text}");
    assert_eq!(float(f64::INFINITY), "+Inf");
    assert_eq!(float(f64::NAN), "NaN");
    assert_eq!(float(0.0), "0");
}

fn answer(request: &str) -> (String, usize) {
    let mut calls = 0;
    let out = respond(request.as_bytes(), Complete::Head, &mut || {
        calls += 1;
        "x 1\n".to_string()
    });
    (String::from_utf8(out).unwrap(), calls)
}

#[test]
fn responses() {
    let (r, calls) = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\nx 1\n"), "{r}");
    assert!(r.contains("Content-Type: text/plain; version=0.0.4") && r.contains("Content-Length: 4\r\n"));
    assert_eq!(calls, 1);
    let (r, _) = answer("GET /metrics?name[]=x HTTP/1.0\n\n");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    let (r, calls) = answer("HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(r.contains("Content-Length: 4\r\n") && r.ends_with("\r\n\r\n"), "{r}");
    assert_eq!(calls, 1);
    let (r, calls) = answer("GET / HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
    assert_eq!(calls, 0, "no rendering for a 404");
    let (r, _) = answer("POST /metrics HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 405 ") && r.contains("Allow: GET, HEAD\r\n"), "{r}");
    for bad in
        ["\r\n\r\n", "GET\r\n\r\n", "GET /metrics\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n", "\u{16}\u{3}\u{1}\n\n"]
    {
        let (r, calls) = answer(bad);
        assert!(r.starts_with("HTTP/1.1 400 "), "{bad:?}: {r}");
        assert_eq!(calls, 0);
    }
    let out = respond(b"GET /metrics", Complete::TooLarge, &mut || unreachable!());
    assert!(out.starts_with(b"HTTP/1.1 431 "));
}

#[test]
fn head_end_detection_across_reads() {
    struct Chunks(Vec<&'static [u8]>);
    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.first_mut() {
                None => Err(io::ErrorKind::WouldBlock.into()),
                Some(c) => {
                    let n = c.len().min(buf.len());
                    buf[..n].copy_from_slice(&c[..n]);
                    *c = &c[n..];
                    if c.is_empty() {
                        self.0.remove(0);
                    }
                    Ok(n)
                }
            }
        }
    }
    let mut head = Vec::new();
    let mut src = Chunks(vec![b"GET /metrics HTTP/1.1\r", b"\n\r"]);
    assert_eq!(read_head(&mut src, &mut head).unwrap(), None);
    let mut src = Chunks(vec![b"\n"]);
    assert_eq!(read_head(&mut src, &mut head).unwrap(), Some(Complete::Head));
    let mut head = Vec::new();
    let big: &'static [u8] = Box::leak(vec![b'a'; MAX_REQUEST + 10].into_boxed_slice());
    assert_eq!(read_head(&mut Chunks(vec![big]), &mut head).unwrap(), Some(Complete::TooLarge));
    assert_eq!(head.len(), MAX_REQUEST);
}

#[test]
fn tokens() {
    let ep = MetricsEndpoint::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    assert!(ep.owns(METRICS_LISTENER));
    assert!(ep.owns(Token(METRICS_CONN_BASE)) && ep.owns(Token(METRICS_CONN_BASE + MAX_SCRAPES - 1)));
    assert!(!ep.owns(Token(0)) && !ep.owns(Token(METRICS_CONN_BASE + MAX_SCRAPES)));
    assert!(!ep.owns(Token(usize::MAX - 1)) && !ep.owns(Token(usize::MAX - 2)));
    assert_ne!(ep.local_addr().port(), 0);
}
