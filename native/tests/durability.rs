//! Acknowledged means durable: a node that is SIGKILLed right after acknowledging a
//! burst of pipelined writes has every one of them after restart. (With group commit
//! the node buffers a turn's writes in process memory and syncs once; acknowledging
//! before that sync would lose the tail of the burst here.)

mod common;

use common::{encode, Cluster, Value};

#[test]
fn acknowledged_writes_survive_sigkill() {
    for engine in ["lsm", "redb"] {
        let mut cluster = Cluster::start(1, &["--engine", engine]);
        let mut c = cluster.nodes[0].resp();
        let count = 3000;
        let mut batch = Vec::new();
        for i in 0..count {
            batch.extend(encode(&[
                b"SET",
                format!("d{i}").as_bytes(),
                format!("v{i}").as_bytes(),
            ]));
        }
        c.send_raw(&batch).expect("send");
        for i in 0..count {
            assert_eq!(c.read(), Some(Value::ok()), "{engine}: SET {i}");
        }
        cluster.nodes[0].kill9();
        cluster.nodes[0].start();
        cluster.nodes[0].wait_healthy();
        let mut c = cluster.nodes[0].resp();
        let mut batch = Vec::new();
        for i in 0..count {
            batch.extend(encode(&[b"GET", format!("d{i}").as_bytes()]));
        }
        c.send_raw(&batch).expect("send");
        for i in 0..count {
            assert_eq!(
                c.read(),
                Some(Value::bulk(&format!("v{i}"))),
                "{engine}: d{i} lost"
            );
        }
    }
}
