//! The block stores that run in the browser (MemoryStore) and the fault-injecting store
//! the crash tests use, compiled to wasm32 and run in Node (wasm-bindgen-test). Also
//! checks that the model-test generator gives the same ops on wasm as natively, so a
//! failing seed reproduces on either side.
//!
//! Run: `cargo test -p ringkv-core --target wasm32-unknown-unknown --test wasm_blockstore`
#![cfg(target_arch = "wasm32")]

use std::sync::Arc;

use ringkv_core::storage::blockstore::{Fault, FaultStore, MemoryStore};
use ringkv_core::storage::testing::{ops_fingerprint, random_ops, SplitMix64};
use ringkv_core::storage::{BlockStore, StorageError};
use wasm_bindgen_test::wasm_bindgen_test;

fn sorted_names(store: &dyn BlockStore) -> Vec<String> {
    let mut names = store.list().expect("list");
    names.sort();
    names
}

/// Create, append, read, reopen, rename, remove: the contract every engine relies on.
fn exercise_store(store: &dyn BlockStore) {
    let file = store.create("a.log").expect("create");
    assert!(file.is_empty().expect("is_empty"));
    file.append(b"hello ").expect("append");
    file.append(b"world").expect("append");
    file.sync().expect("sync");
    assert_eq!(file.len().expect("len"), 11);
    assert_eq!(file.read_all().expect("read_all"), b"hello world");

    let mut buf = [0u8; 5];
    file.read_at(6, &mut buf).expect("read_at");
    assert_eq!(&buf, b"world");
    assert!(
        file.read_at(8, &mut buf).is_err(),
        "reading past the end must fail"
    );

    // A second handle sees the same bytes.
    let again = store.open("a.log").expect("open");
    assert_eq!(again.read_all().expect("read_all"), b"hello world");
    assert!(matches!(
        store.open("missing"),
        Err(StorageError::NotFound { .. })
    ));

    // Large appends (bigger than any block) read back intact.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let big_file = store.create("big.sst").expect("create");
    big_file.append(&big).expect("append");
    big_file.sync().expect("sync");
    assert_eq!(big_file.read_all().expect("read_all"), big);

    file.truncate(5).expect("truncate");
    file.sync().expect("sync");
    assert_eq!(
        store.open("a.log").expect("open").read_all().expect("read"),
        b"hello"
    );

    store.rename("a.log", "b.log").expect("rename");
    assert_eq!(sorted_names(store), ["b.log", "big.sst"]);
    assert_eq!(
        store.open("b.log").expect("open").read_all().expect("read"),
        b"hello"
    );
    assert!(
        store.rename("a.log", "c.log").is_err(),
        "renaming a missing file fails"
    );

    // Rename replaces its target.
    let c = store.create("c.log").expect("create");
    c.append(b"new").expect("append");
    c.sync().expect("sync");
    store.rename("c.log", "b.log").expect("rename over");
    assert_eq!(
        store.open("b.log").expect("open").read_all().expect("read"),
        b"new"
    );

    store.remove("b.log").expect("remove");
    store
        .remove("b.log")
        .expect("removing an absent file is not an error");
    assert_eq!(sorted_names(store), ["big.sst"]);

    // `create` replaces an existing file with an empty one.
    let fresh = store.create("big.sst").expect("create");
    assert_eq!(fresh.len().expect("len"), 0);
}

#[wasm_bindgen_test]
fn memory_store_contract() {
    exercise_store(&MemoryStore::new());
}

#[wasm_bindgen_test]
fn fault_store_contract() {
    exercise_store(&FaultStore::new());
}

#[wasm_bindgen_test]
fn memory_store_is_shared_between_clones() {
    let store = MemoryStore::new();
    let as_dyn: Arc<dyn BlockStore> = Arc::new(store.clone());
    let file = as_dyn.create("x").expect("create");
    file.append(&[7u8; 1000]).expect("append");
    assert_eq!(store.size_bytes(), 1000);
    assert_eq!(store.open("x").expect("open").len().expect("len"), 1000);
}

#[wasm_bindgen_test]
fn fault_store_crash_image_keeps_synced_bytes() {
    let store = FaultStore::new();
    let file = store.create("wal").expect("create");
    file.append(b"durable").expect("append");
    file.sync().expect("sync");
    file.append(b"-volatile").expect("append");

    let image = store.crash_image(0);
    let read = image.open("wal").expect("open").read_all().expect("read");
    assert_eq!(read, b"durable", "seed 0 keeps exactly the synced bytes");

    // Other seeds keep a prefix of the unsynced tail, never more, never a hole.
    for seed in 1..50 {
        let read = store
            .crash_image(seed)
            .open("wal")
            .expect("open")
            .read_all()
            .expect("read");
        assert!(
            b"durable-volatile".starts_with(&read),
            "seed {seed}: {read:?}"
        );
        assert!(read.len() >= b"durable".len(), "seed {seed}: {read:?}");
    }
}

#[wasm_bindgen_test]
fn fault_store_injects_planned_faults() {
    let store = FaultStore::new();
    let file = store.create("f").expect("create"); // op 0
    store.plan(1, Fault::Eio);
    store.plan(2, Fault::NoSpace);
    store.plan(4, Fault::Crash);
    assert!(file.append(b"a").is_err(), "op 1: EIO"); // op 1
    assert!(matches!(
        file.append(b"b"), // op 2
        Err(StorageError::NoSpace { .. })
    ));
    file.append(b"c").expect("op 3 succeeds");
    assert_eq!(
        file.read_all().expect("read"),
        b"c",
        "failed ops change nothing"
    );
    assert!(file.sync().is_err(), "op 4: crash"); // op 4
    assert!(store.has_crashed());
    assert!(file.append(b"d").is_err(), "everything fails after a crash");
    assert!(store.list().is_err());
    // Nothing was synced before the crash.
    let image = store.crash_image(0);
    assert_eq!(
        image.open("f").expect("open").read_all().expect("read"),
        b""
    );
}

#[wasm_bindgen_test]
fn model_ops_are_the_same_as_on_native() {
    let mut rng = SplitMix64::new(1234567);
    assert_eq!(rng.next_u64(), 6457827717110365317);
    // Same constant as `storage::testing::tests::random_ops_fingerprint_is_pinned`
    // (native): if either changes, seeds stop reproducing across platforms.
    assert_eq!(
        ops_fingerprint(&random_ops(42, 1000, 64)),
        RANDOM_OPS_42_FINGERPRINT
    );
}

const RANDOM_OPS_42_FINGERPRINT: u64 = 0x925F_4034_81DD_3840;
