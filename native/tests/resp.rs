//! RESP against a real single-node `ringkv serve`: round-trips of every supported
//! command, pipelining, AUTH, and redis-cli / redis-benchmark when installed; SCAN and
//! KEYS on a 3-node cluster.

mod common;

use std::collections::BTreeSet;

use common::{encode, Cluster, Value};

#[test]
fn commands_round_trip() {
    let cluster = Cluster::start(1, &[]);
    let mut c = cluster.nodes[0].resp();
    assert_eq!(c.call(&["PING"]), Value::Simple("PONG".into()));
    assert_eq!(c.call(&["PING", "hi"]), Value::bulk("hi"));
    assert_eq!(c.call(&["GET", "missing"]), Value::Bulk(None));
    assert_eq!(c.call(&["SET", "k1", "v1"]), Value::ok());
    assert_eq!(c.call(&["GET", "k1"]), Value::bulk("v1"));
    assert_eq!(c.call(&["SET", "k1", "v2"]), Value::ok());
    assert_eq!(
        c.call(&["get", "k1"]),
        Value::bulk("v2"),
        "commands are case-insensitive"
    );
    assert_eq!(c.call(&["MSET", "a", "1", "b", "2"]), Value::ok());
    assert_eq!(
        c.call(&["MGET", "a", "nope", "b"]),
        Value::Array(vec![Value::bulk("1"), Value::Bulk(None), Value::bulk("2")])
    );
    assert_eq!(c.call(&["EXISTS", "a", "nope", "b", "a"]), Value::Int(3));
    assert_eq!(c.call(&["DBSIZE"]), Value::Int(3));
    assert_eq!(c.call(&["DEL", "a", "nope"]), Value::Int(1));
    assert_eq!(c.call(&["GET", "a"]), Value::Bulk(None));
    assert_eq!(
        c.call(&["DBSIZE"]),
        Value::Int(2),
        "deleted keys are not counted"
    );
    // Binary-safe keys and values.
    let key: &[u8] = b"bin\x00\r\nkey";
    let value: &[u8] = b"\xff\x00\r\n$3\r\n";
    assert_eq!(c.call_bytes(&[b"SET", key, value]), Value::ok());
    assert_eq!(
        c.call_bytes(&[b"GET", key]),
        Value::Bulk(Some(value.to_vec()))
    );

    match c.call(&["INFO"]) {
        Value::Bulk(Some(text)) => {
            assert!(String::from_utf8_lossy(&text).contains("redis_version"))
        }
        other => panic!("INFO: {other:?}"),
    }
    assert_eq!(c.call(&["COMMAND", "DOCS"]), Value::Array(vec![]));
    assert_eq!(c.call(&["CLIENT", "SETNAME", "me"]), Value::ok());
    assert!(matches!(c.call(&["HELLO", "2"]), Value::Array(_)));
    assert_eq!(c.call(&["HELLO", "3"]).error_prefix(), Some("NOPROTO"));
    assert_eq!(c.call(&["SELECT", "0"]), Value::ok());
    assert_eq!(c.call(&["FLUSHALL"]).error_prefix(), Some("ERR"));
    assert_eq!(c.call(&["SET", "k"]).error_prefix(), Some("ERR"));
    assert_eq!(
        c.call(&["SET", "k", "v", "EX", "10"]).error_prefix(),
        Some("ERR")
    );
    assert_eq!(
        c.call(&["AUTH", "x"]).error_prefix(),
        Some("ERR"),
        "no token configured"
    );
    // Inline commands, as typed into telnet.
    c.send_raw(b"PING\r\n").expect("send");
    assert_eq!(c.read(), Some(Value::Simple("PONG".into())));
    assert_eq!(c.call(&["QUIT"]), Value::ok());
    assert_eq!(c.read(), None, "QUIT closes the connection");
}

#[test]
fn pipelined_replies_come_back_in_order() {
    let cluster = Cluster::start(1, &["--max-in-flight-per-connection", "16"]);
    let mut c = cluster.nodes[0].resp();
    // Far more commands than may be in flight, in one write: the server must stop
    // reading at its bound and still answer every command, in order.
    let count = 500;
    let mut batch = Vec::new();
    for i in 0..count {
        batch.extend(encode(&[
            b"SET",
            format!("p{i}").as_bytes(),
            format!("v{i}").as_bytes(),
        ]));
        batch.extend(encode(&[b"GET", format!("p{i}").as_bytes()]));
        batch.extend(encode(&[b"PING"]));
    }
    c.send_raw(&batch).expect("send");
    for i in 0..count {
        assert_eq!(c.read(), Some(Value::ok()), "SET {i}");
        assert_eq!(c.read(), Some(Value::bulk(&format!("v{i}"))), "GET {i}");
        assert_eq!(c.read(), Some(Value::Simple("PONG".into())), "PING {i}");
    }
}

#[test]
fn auth_token_is_required_when_configured() {
    let cluster = Cluster::start(1, &["--auth-token", "letmein"]);
    let mut c = cluster.nodes[0].resp();
    assert_eq!(c.call(&["GET", "k"]).error_prefix(), Some("NOAUTH"));
    assert_eq!(c.call(&["SET", "k", "v"]).error_prefix(), Some("NOAUTH"));
    assert_eq!(c.call(&["AUTH", "wrong"]).error_prefix(), Some("WRONGPASS"));
    assert_eq!(c.call(&["AUTH", "letmein"]), Value::ok());
    assert_eq!(c.call(&["SET", "k", "v"]), Value::ok());
    let mut d = cluster.nodes[0].resp();
    assert!(matches!(
        d.call(&["HELLO", "2", "AUTH", "default", "letmein"]),
        Value::Array(_)
    ));
    assert_eq!(d.call(&["GET", "k"]), Value::bulk("v"));
    // Ten wrong guesses close the connection.
    let mut e = cluster.nodes[0].resp();
    for _ in 0..9 {
        assert_eq!(e.call(&["AUTH", "guess"]).error_prefix(), Some("WRONGPASS"));
    }
    assert_eq!(e.call(&["AUTH", "guess"]).error_prefix(), Some("WRONGPASS"));
    assert_eq!(e.read(), None);
}

/// One `SCAN` reply: its cursor and keys, checking Redis's reply shape on the way.
fn scan_reply(reply: Value) -> (u64, Vec<String>) {
    let Value::Array(parts) = reply else {
        panic!("SCAN answers an array: {reply:?}");
    };
    let [Value::Bulk(Some(cursor)), Value::Array(keys)] = parts.as_slice() else {
        panic!("SCAN answers [cursor, [keys]]: {parts:?}");
    };
    let cursor = String::from_utf8_lossy(cursor)
        .parse()
        .expect("a decimal cursor");
    let keys = keys
        .iter()
        .map(|key| match key {
            Value::Bulk(Some(key)) => String::from_utf8_lossy(key).into_owned(),
            other => panic!("a key is a bulk string: {other:?}"),
        })
        .collect();
    (cursor, keys)
}

#[test]
fn scan_and_keys_list_the_cluster() {
    let cluster = Cluster::start(3, &[]);
    let mut first = cluster.nodes[0].resp();
    for i in 0..120 {
        let (key, group) = (format!("user:{i}"), if i % 4 == 0 { "a" } else { "b" });
        assert_eq!(first.call(&["SET", &key, group]), Value::ok());
    }
    for i in (0..120).step_by(10) {
        assert_eq!(first.call(&["DEL", &format!("user:{i}")]), Value::Int(1));
    }
    let live: BTreeSet<String> = (0..120)
        .filter(|i| i % 10 != 0)
        .map(|i| format!("user:{i}"))
        .collect();
    // A full SCAN through another node, small pages: every live key, each once.
    let mut second = cluster.nodes[1].resp();
    let mut seen = Vec::new();
    let mut cursor = 0u64;
    for _ in 0..10_000 {
        let (next, keys) = scan_reply(second.call(&["SCAN", &cursor.to_string(), "COUNT", "7"]));
        seen.extend(keys);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(cursor, 0, "the scan ended");
    assert_eq!(seen.len(), live.len(), "each key once");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), live);
    // MATCH filters; TYPE string is everything, another type nothing.
    let mut third = cluster.nodes[2].resp();
    let mut matched = BTreeSet::new();
    let mut cursor = 0u64;
    loop {
        let reply = third.call(&[
            "SCAN",
            &cursor.to_string(),
            "MATCH",
            "user:1?",
            "TYPE",
            "string",
        ]);
        let (next, keys) = scan_reply(reply);
        matched.extend(keys);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let want: BTreeSet<String> = (11..20).map(|i| format!("user:{i}")).collect();
    assert_eq!(matched, want);
    let (_, none) = scan_reply(third.call(&["SCAN", "0", "TYPE", "hash", "COUNT", "1000"]));
    assert!(none.is_empty());
    // KEYS.
    let Value::Array(all) = third.call(&["KEYS", "*"]) else {
        panic!("KEYS answers an array");
    };
    assert_eq!(all.len(), live.len());
    let Value::Array(some) = third.call(&["KEYS", "user:[1-2]"]) else {
        panic!("KEYS answers an array");
    };
    assert_eq!(some.len(), 2, "user:1 and user:2");
    // Bad arguments are errors, not panics or guesses.
    for args in [
        &["SCAN", "abc"][..],
        &["SCAN", "-1"],
        &["SCAN", "0", "COUNT", "0"],
        &["SCAN", "0", "COUNT"],
        &["SCAN", "0", "BOGUS", "1"],
    ] {
        assert!(
            matches!(third.call(args), Value::Error(_)),
            "{args:?} is refused"
        );
    }
    // The CLI lists the same keys through the client protocol.
    let out = std::process::Command::new(common::ringkv_bin())
        .args(["keys", "user:*", "--node", &cluster.nodes[1].ws])
        .output()
        .expect("ringkv keys");
    assert!(out.status.success(), "{out:?}");
    let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, live, "ringkv keys");
    // redis-cli's own SCAN loop (a real client's cursor handling) sees the same keys.
    if have("redis-cli") {
        let port = cluster.nodes[0].resp.rsplit(':').next().expect("port");
        let out = std::process::Command::new("redis-cli")
            .args(["-p", port, "--scan", "--pattern", "user:*"])
            .output()
            .expect("redis-cli");
        assert!(out.status.success(), "{out:?}");
        let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(listed, live, "redis-cli --scan");
    }
}

fn have(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn redis_cli_and_redis_benchmark_work() {
    if !have("redis-cli") || !have("redis-benchmark") {
        println!("NOTICE: redis-cli/redis-benchmark not installed (apt-get install redis-tools); skipping");
        return;
    }
    let cluster = Cluster::start(1, &[]);
    let port = cluster.nodes[0]
        .resp
        .rsplit(':')
        .next()
        .expect("port")
        .to_string();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &port])
            .args(args)
            .output()
            .expect("redis-cli");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["set", "a", "1"]), "OK");
    assert_eq!(cli(&["get", "a"]), "1");
    assert_eq!(cli(&["ping"]), "PONG");
    assert_eq!(cli(&["del", "a"]), "1");
    assert_eq!(cli(&["get", "a"]), "");
    assert!(cli(&["bogus"]).starts_with("ERR"));
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "-p", &port, "-t", "set,get", "-n", "2000", "-c", "10", "-P", "16", "-q",
        ])
        .output()
        .expect("redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SET:") && text.contains("GET:"), "{text}");
    // Every benchmark request succeeded: the node counted no errors.
    let metrics = common::http_get(&cluster.nodes[0].http, "/metrics").expect("metrics");
    for outcome in [
        "unavailable",
        "indeterminate",
        "too_large",
        "overloaded",
        "error",
    ] {
        for op in ["get", "put"] {
            let line = format!("ringkv_requests_total{{op=\"{op}\",outcome=\"{outcome}\"}} 0");
            assert!(metrics.contains(&line), "missing {line}");
        }
    }
}
