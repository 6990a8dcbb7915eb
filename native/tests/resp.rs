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

/// One reply as text, for comparing ringkv with Redis: `+OK`, `(nil)`, `:3`, `$value`,
/// `-CODE detail`.
fn shown(reply: &Value) -> String {
    match reply {
        Value::Simple(text) => format!("+{text}"),
        Value::Error(text) => format!("-{text}"),
        Value::Int(n) => format!(":{n}"),
        Value::Bulk(None) => "(nil)".into(),
        Value::Bulk(Some(bytes)) => format!("${}", String::from_utf8_lossy(bytes)),
        Value::Array(items) => format!("{:?}", items.iter().map(shown).collect::<Vec<_>>()),
    }
}

/// Every conditional command and its Redis 7 reply, in order on fresh keys: the
/// expectations are Redis's (`redis_client_sees_redis_reply_types` checks them against
/// a real redis-server when one is installed).
const CONDITIONAL_SCRIPT: &[(&[&str], &str)] = &[
    (&["SET", "c1", "v1", "NX"], "+OK"),
    (&["SET", "c1", "v2", "NX"], "(nil)"),
    (&["GET", "c1"], "$v1"),
    (&["SET", "c1", "v3", "XX"], "+OK"),
    (&["SET", "c0", "v", "XX"], "(nil)"),
    (&["GET", "c0"], "(nil)"),
    (&["SET", "c1", "v4", "GET"], "$v3"),
    (&["SET", "c2", "x", "nx", "get"], "(nil)"),
    (&["GET", "c2"], "$x"),
    (&["SET", "c2", "y", "NX", "GET"], "$x"),
    (&["GET", "c2"], "$x"),
    (&["SET", "c2", "z", "XX", "GET"], "$x"),
    (&["SET", "c9", "z", "XX", "GET"], "(nil)"),
    (&["GET", "c9"], "(nil)"),
    (&["SETNX", "c3", "a"], ":1"),
    (&["SETNX", "c3", "b"], ":0"),
    (&["GET", "c3"], "$a"),
    (&["GETSET", "c3", "b"], "$a"),
    (&["GETSET", "c4", "v"], "(nil)"),
    (&["GETDEL", "c3"], "$b"),
    (&["GETDEL", "c3"], "(nil)"),
    (&["GET", "c3"], "(nil)"),
    (&["INCR", "n"], ":1"),
    (&["INCRBY", "n", "10"], ":11"),
    (&["DECR", "n"], ":10"),
    (&["DECRBY", "n", "20"], ":-10"),
    (&["INCRBY", "n", "-5"], ":-15"),
    (&["GET", "n"], "$-15"),
    (&["DECR", "m"], ":-1"),
    (&["SET", "s", "12"], "+OK"),
    (&["INCR", "s"], ":13"),
    (
        &["INCR", "c2"],
        "-ERR value is not an integer or out of range",
    ),
    (&["SET", "odd", "007"], "+OK"),
    (
        &["INCR", "odd"],
        "-ERR value is not an integer or out of range",
    ),
    (&["SET", "plus", "+1"], "+OK"),
    (
        &["INCR", "plus"],
        "-ERR value is not an integer or out of range",
    ),
    (&["SET", "big", "9223372036854775807"], "+OK"),
    (&["INCR", "big"], "-ERR *"),
    (&["GET", "big"], "$9223372036854775807"),
    (
        &["INCRBY", "n", "abc"],
        "-ERR value is not an integer or out of range",
    ),
    (
        &["INCRBY", "n", "1.5"],
        "-ERR value is not an integer or out of range",
    ),
    (
        &["INCRBY", "n", "+1"],
        "-ERR value is not an integer or out of range",
    ),
    (
        &["INCRBY", "n", "99999999999999999999"],
        "-ERR value is not an integer or out of range",
    ),
    (
        &["DECRBY", "n", "-9223372036854775808"],
        "-ERR decrement would overflow",
    ),
    (&["GET", "n"], "$-15"),
    (
        &["INCR"],
        "-ERR wrong number of arguments for 'incr' command",
    ),
    (
        &["INCR", "a", "b"],
        "-ERR wrong number of arguments for 'incr' command",
    ),
    (
        &["DECRBY", "n"],
        "-ERR wrong number of arguments for 'decrby' command",
    ),
    (
        &["SETNX", "k"],
        "-ERR wrong number of arguments for 'setnx' command",
    ),
    (
        &["GETSET", "k"],
        "-ERR wrong number of arguments for 'getset' command",
    ),
    (
        &["GETDEL"],
        "-ERR wrong number of arguments for 'getdel' command",
    ),
    (&["SET", "k", "v", "NX", "XX"], "-ERR syntax error"),
    (&["SET", "k", "v", "BOGUS"], "-ERR syntax error"),
    (&["SET", "k", "v", "EX"], "-ERR syntax error"),
    (&["GET", "k"], "(nil)"),
];

/// Replies Redis words differently (same type and prefix): ringkv's core reports an
/// overflowing increment as "not an integer or out of range", Redis as "increment or
/// decrement would overflow". `-ERR *` in the script matches any `-ERR` error.
fn same_reply(want: &str, got: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => got.starts_with(prefix),
        None => want == got,
    }
}

#[test]
fn conditional_commands_have_redis_reply_shapes() {
    let cluster = Cluster::start(1, &[]);
    let mut c = cluster.nodes[0].resp();
    for (args, want) in CONDITIONAL_SCRIPT {
        let got = shown(&c.call(args));
        assert!(same_reply(want, &got), "{args:?}: want {want}, got {got}");
    }
    // Expiry is not built: refused, and nothing is written.
    for args in [
        &["SET", "e", "v", "EX", "10"][..],
        &["SET", "e", "v", "NX", "PX", "100"],
        &["SET", "e", "v", "EXAT", "1"],
        &["SET", "e", "v", "PXAT", "1", "GET"],
        &["SET", "e", "v", "KEEPTTL"],
    ] {
        let got = shown(&c.call(args));
        assert!(
            got.starts_with("-ERR") && got.contains("not supported"),
            "{args:?}: {got}"
        );
    }
    assert_eq!(c.call(&["GET", "e"]), Value::Bulk(None));
    // Binary-safe values through a conditional write.
    let value: &[u8] = b"\xff\x00\r\n";
    assert_eq!(c.call_bytes(&[b"SET", b"b", value, b"NX"]), Value::ok());
    assert_eq!(
        c.call_bytes(&[b"GETDEL", b"b"]),
        Value::Bulk(Some(value.to_vec()))
    );
    // The node counted them as updates.
    let metrics = common::http_get(&cluster.nodes[0].http, "/metrics").expect("metrics");
    assert!(
        !metrics.contains("ringkv_requests_total{op=\"update\",outcome=\"ok\"} 0"),
        "updates are counted"
    );
    // The CLI's incr and cas, through the client protocol.
    let node = cluster.nodes[0].ws.clone();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(common::ringkv_bin())
            .args(args)
            .args(["--node", &node])
            .output()
            .expect("ringkv");
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.code(), stdout)
    };
    assert_eq!(cli(&["incr", "cli-n"]), (Some(0), "1".into()));
    assert_eq!(
        cli(&["incr", "cli-n", "--by", "-5"]),
        (Some(0), "-4".into())
    );
    assert_eq!(cli(&["incr", "c2"]).0, Some(2), "not an integer");
    assert_eq!(
        cli(&["cas", "cli-k", "a", "--absent"]),
        (Some(0), "a".into())
    );
    assert_eq!(
        cli(&["cas", "cli-k", "b", "--absent"]),
        (Some(1), "a".into())
    );
    assert_eq!(
        cli(&["cas", "cli-k", "b", "--expect", "x"]),
        (Some(1), "a".into())
    );
    assert_eq!(
        cli(&["cas", "cli-k", "b", "--expect", "a"]),
        (Some(0), "b".into())
    );
    let (code, json) = cli(&["cas", "cli-k", "--delete", "--present", "--json"]);
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"key": "cli-k", "applied": true, "previous": "b", "current": null})
    );
    assert_eq!(
        cli(&["cas", "cli-k", "v"]).0,
        Some(2),
        "a condition is required"
    );
}

/// Increments from several connections on three nodes, on one key: none is lost and
/// none is counted twice. Each `INCR` is one consensus round: `-CONTENTION` means it did
/// not take effect (the client retries it, as `-UNAVAILABLE`); `-INDETERMINATE` that it
/// may or may not have
/// (the client moves on), so the final count lies between the acknowledged increments
/// and those plus the indeterminate ones, and every acknowledged increment saw its own
/// count (no two returned the same value).
#[test]
fn concurrent_increments_are_never_lost() {
    let cluster = Cluster::start(3, &[]);
    let (clients, each) = (6, 50);
    let outcomes: Vec<(Vec<i64>, u64, u64)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|i| {
                let mut c = cluster.nodes[i % 3].resp();
                scope.spawn(move || {
                    let (mut acked, mut contention, mut indeterminate) = (Vec::new(), 0, 0);
                    for _ in 0..each {
                        loop {
                            match c.call(&["INCR", "shared"]) {
                                Value::Int(n) => acked.push(n),
                                // Did not take effect: retried (UNAVAILABLE too, in
                                // case a loaded machine makes a phase time out).
                                Value::Error(e)
                                    if (e.starts_with("CONTENTION")
                                        || e.starts_with("UNAVAILABLE"))
                                        && contention < 1_000 =>
                                {
                                    contention += 1;
                                    continue;
                                }
                                Value::Error(e) if e.starts_with("INDETERMINATE") => {
                                    indeterminate += 1
                                }
                                other => panic!("INCR: {other:?}"),
                            }
                            break;
                        }
                    }
                    (acked, contention, indeterminate)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("client thread"))
            .collect()
    });
    let mut acked: Vec<i64> = outcomes.iter().flat_map(|o| o.0.clone()).collect();
    let contention: u64 = outcomes.iter().map(|o| o.1).sum();
    let indeterminate: u64 = outcomes.iter().map(|o| o.2).sum();
    acked.sort_unstable();
    let distinct = acked.len();
    acked.dedup();
    assert_eq!(
        acked.len(),
        distinct,
        "two increments returned the same count"
    );
    let mut c = cluster.nodes[1].resp();
    let Value::Bulk(Some(text)) = c.call(&["GET", "shared"]) else {
        panic!("the counter exists");
    };
    let total: i64 = String::from_utf8_lossy(&text).parse().expect("a count");
    let low = distinct as i64;
    assert!(
        (low..=low + indeterminate as i64).contains(&total),
        "{total} after {low} acknowledged and {indeterminate} indeterminate increments"
    );
    assert!(acked.last().is_none_or(|max| *max <= total));
    assert_eq!(c.call(&["INCRBY", "shared", "0"]), Value::Int(total));
    println!(
        "{} INCRs: {distinct} acknowledged, {indeterminate} indeterminate, {contention} retries \
         (CONTENTION, UNAVAILABLE); counter {total}",
        clients * each
    );
}

/// A redis-server on a free port, stopped when dropped.
struct RedisServer {
    child: std::process::Child,
    address: String,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = common::free_port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server");
        let address = format!("127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while common::Resp::try_connect(&address, std::time::Duration::from_secs(1))
            .and_then(|mut c| c.try_call(&["PING"]))
            .is_none()
        {
            assert!(std::time::Instant::now() < deadline, "redis-server started");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        RedisServer { child, address }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reply as the `redis` crate decodes it, in `shown`'s notation.
fn library_reply(reply: redis::RedisResult<redis::Value>) -> String {
    match reply {
        Ok(redis::Value::Okay) => "+OK".into(),
        Ok(redis::Value::SimpleString(text)) => format!("+{text}"),
        Ok(redis::Value::Nil) => "(nil)".into(),
        Ok(redis::Value::Int(n)) => format!(":{n}"),
        Ok(redis::Value::BulkString(bytes)) => format!("${}", String::from_utf8_lossy(&bytes)),
        Ok(other) => format!("{other:?}"),
        Err(error) => format!(
            "-{} {}",
            error.code().unwrap_or("?"),
            error.detail().unwrap_or("")
        ),
    }
}

/// The conditional commands through a real Redis client library (the `redis` crate),
/// against ringkv and, when installed, against redis-server: the library decodes the
/// same reply types and values from both, and its typed API works on ringkv.
#[test]
fn redis_client_sees_redis_reply_types() {
    use redis::Commands;

    let cluster = Cluster::start(1, &[]);
    // Redis first: the script's expectations are checked against Redis itself before
    // ringkv is held to them.
    let redis = have("redis-server").then(RedisServer::start);
    let mut servers = Vec::new();
    match &redis {
        Some(redis) => servers.push(("redis-server", redis.address.clone())),
        None => println!("NOTICE: redis-server not installed (apt-get install redis-server); checking ringkv against Redis's documented replies only"),
    }
    servers.push(("ringkv", cluster.nodes[0].resp.clone()));
    for (name, address) in &servers {
        let client = redis::Client::open(format!("redis://{address}/")).expect("client");
        let mut con = client.get_connection().expect("connect");
        for (args, want) in CONDITIONAL_SCRIPT {
            let mut command = redis::cmd(args[0]);
            for arg in &args[1..] {
                command.arg(*arg);
            }
            let got = library_reply(command.query::<redis::Value>(&mut con));
            assert!(
                same_reply(want, &got),
                "{name}: {args:?}: want {want}, got {got}"
            );
        }
        // The typed API, as applications call it.
        let stored: bool = con.set_nx("t1", "a").expect("SETNX");
        assert!(stored, "{name}");
        let stored: bool = con.set_nx("t1", "b").expect("SETNX");
        assert!(!stored, "{name}");
        let old: Option<String> = con.getset("t1", "c").expect("GETSET");
        assert_eq!(old.as_deref(), Some("a"), "{name}");
        let old: Option<String> = con.get_del("t1").expect("GETDEL");
        assert_eq!(old.as_deref(), Some("c"), "{name}");
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .get(true);
        let old: Option<String> = con.set_options("t1", "d", options).expect("SET NX GET");
        assert_eq!(old, None, "{name}");
        let n: i64 = con.incr("t2", 41).expect("INCRBY");
        assert_eq!(n, 41, "{name}");
        let n: i64 = con.decr("t2", -1).expect("DECRBY");
        assert_eq!(n, 42, "{name}");
        let error = con.incr::<_, _, i64>("t1", 1).expect_err("INCR of text");
        assert_eq!(error.code(), Some("ERR"), "{name}: {error}");
    }
}

/// `redis-benchmark -t incr` against one node (one replica: its rounds never meet
/// another coordinator's).
#[test]
fn redis_benchmark_incr_loses_no_increment() {
    benchmark_hot_incr(1);
}

/// The same on a 3-node cluster, all 50 connections on one node and one key. Fails
/// today: updates of one key from one coordinator outbid each other, and the first
/// `-INDETERMINATE` stops redis-benchmark (even with 2 connections). Run with
/// `--ignored` once the core serializes (or batches) a coordinator's updates per key.
#[test]
#[ignore = "hot-key updates on several replicas answer INDETERMINATE (core)"]
fn redis_benchmark_incr_hot_key_on_three_nodes() {
    benchmark_hot_incr(3);
}

fn benchmark_hot_incr(nodes: u64) {
    if !have("redis-benchmark") {
        println!("NOTICE: redis-benchmark not installed (apt-get install redis-tools); skipping");
        return;
    }
    let cluster = Cluster::start(nodes, &[]);
    let port = cluster.nodes[0].resp.rsplit(':').next().expect("port");
    let requests = 20_000;
    let out = std::process::Command::new("redis-benchmark")
        .args(["-p", port, "-t", "incr", "-n", &requests.to_string(), "-q"])
        .output()
        .expect("redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text} {errors}");
    assert!(text.contains("INCR:"), "{text}");
    // The last of its progress lines (separated by CR) is the result.
    println!("{}", text.rsplit('\r').next().unwrap_or_default().trim());
    // redis-benchmark increments one key (`counter:__rand_int__` without -r) from 50
    // connections and does not check replies: the node counted no failed update and
    // the counter holds every increment.
    let metrics = common::http_get(&cluster.nodes[0].http, "/metrics").expect("metrics");
    for outcome in [
        "unavailable",
        "indeterminate",
        "too_large",
        "overloaded",
        "error",
    ] {
        let line = format!("ringkv_requests_total{{op=\"update\",outcome=\"{outcome}\"}} 0");
        assert!(metrics.contains(&line), "missing {line}");
    }
    let mut c = cluster.nodes[0].resp();
    assert_eq!(
        c.call(&["GET", "counter:__rand_int__"]),
        Value::bulk(&requests.to_string())
    );
}
