//! The image store against a model: after any sequence of file operations cut into
//! turns, a backend that applied every turn's changes holds exactly the image's files.

use super::*;
use ringkv_core::rand::SplitMix64;

fn contents(store: &ImageStore) -> BTreeMap<String, Vec<u8>> {
    store
        .list()
        .expect("list")
        .into_iter()
        .map(|n| {
            let bytes = store.open(&n).expect("open").read_all().expect("read");
            (n, bytes)
        })
        .collect()
}

#[test]
fn committed_changes_rebuild_the_image() {
    for seed in 0..200u64 {
        let mut rng = SplitMix64::new(seed);
        let store = ImageStore::from_files(Vec::new(), 1 << 30).expect("open");
        let mut backend = BTreeMap::new();
        let names = ["a", "b", "c", "MANIFEST"];
        for _turn in 0..20 {
            for _op in 0..rng.below(6) {
                let name = names[rng.below(names.len() as u64) as usize];
                match rng.below(6) {
                    0 => {
                        store.create(name).expect("create");
                    }
                    1 | 2 => {
                        if let Ok(f) = store.open(name) {
                            // Sizes that cross chunk boundaries now and then.
                            let len = rng.below(3 * CHUNK_BYTES / 2) as usize;
                            f.append(&vec![rng.below(256) as u8; len]).expect("append");
                        }
                    }
                    3 => {
                        if let Ok(f) = store.open(name) {
                            let len = f.len().expect("len");
                            f.truncate(rng.below(len + 1)).expect("truncate");
                        }
                    }
                    4 => store.remove(name).expect("remove"),
                    _ => {
                        let to = names[rng.below(names.len() as u64) as usize];
                        if to != name {
                            let _ = store.rename(name, to);
                        }
                    }
                }
            }
            let changes = store.take_changes();
            apply(&mut backend, &changes);
            assert!(!store.has_changes(), "seed {seed}: changes left after take");
            assert_eq!(backend, contents(&store), "seed {seed}");
        }
        let total: u64 = backend.values().map(|b| b.len() as u64).sum();
        assert_eq!(store.size_bytes(), total, "seed {seed}: size accounting");
        let reloaded =
            ImageStore::from_files(backend.clone().into_iter().collect(), 1 << 30).expect("load");
        assert_eq!(contents(&reloaded), backend);
        assert!(!reloaded.has_changes());
    }
}

#[test]
fn an_unchanged_store_has_no_changes_and_small_appends_rewrite_one_chunk() {
    let store =
        ImageStore::from_files(vec![("log".into(), vec![7; 200_000])], 1 << 30).expect("open");
    assert!(store.take_changes().is_empty());
    store
        .open("log")
        .expect("open")
        .append(b"x")
        .expect("append");
    let changes = store.take_changes();
    assert_eq!(changes.files.len(), 1);
    assert_eq!(changes.files[0].chunks.len(), 1);
    assert_eq!(
        changes.files[0].chunks[0].0,
        200_000 - 200_000 % CHUNK_BYTES
    );
    assert!(!changes.files[0].shrunk, "an append only grows the file");
}

#[test]
fn the_size_bound_refuses_appends_past_it() {
    let store = ImageStore::from_files(Vec::new(), 100).expect("open");
    let f = store.create("a").expect("create");
    f.append(&[0; 100]).expect("up to the bound");
    assert!(f.append(&[0]).is_err());
    store.remove("a").expect("remove");
    store
        .create("b")
        .expect("create")
        .append(&[0; 50])
        .expect("space freed");
    assert!(ImageStore::from_files(vec![("x".into(), vec![0; 101])], 100).is_err());
}
