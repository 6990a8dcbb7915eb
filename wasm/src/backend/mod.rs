//! Where an `ImageStore`'s per-turn changes become durable. Each backend loads the whole
//! store on open and applies a commit atomically (all of it or none, across crashes) and
//! in order; that is what makes every durable state a legal crash image.

mod idb;
mod js;
mod lock;
mod request;

pub use idb::{delete_database, IdbBackend};
pub use js::JsBackend;

use crate::error::{Code, Error};
use crate::image::Changes;

#[derive(Clone)]
pub enum Backend {
    IndexedDb(IdbBackend),
    Js(JsBackend),
}

impl Backend {
    pub async fn load(&self) -> Result<Vec<(String, Vec<u8>)>, Error> {
        match self {
            Backend::IndexedDb(b) => b.load().await,
            Backend::Js(b) => b.load().await,
        }
    }

    pub async fn commit(&self, changes: &Changes) -> Result<(), Error> {
        match self {
            Backend::IndexedDb(b) => b.commit(changes).await,
            Backend::Js(b) => b.commit(changes).await,
        }
    }

    pub async fn close(&self) {
        match self {
            Backend::IndexedDb(b) => b.close().await,
            Backend::Js(b) => b.close().await,
        }
    }
}

/// A JS exception from a backend as a `STORAGE` error.
pub(crate) fn storage_error(context: &str, e: wasm_bindgen::JsValue) -> Error {
    let detail = js_sys::Reflect::get(&e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    Error::new(Code::Storage, format!("{context}: {detail}"))
}

/// Checks loaded files: chunks contiguous from 0 and covering `size`; returns the file.
pub(crate) fn assemble(
    name: &str,
    size: u64,
    mut chunks: Vec<(u64, Vec<u8>)>,
) -> Result<Vec<u8>, Error> {
    use crate::image::CHUNK_BYTES;
    chunks.sort_by_key(|(i, _)| *i);
    let corrupt = |why: String| Error::new(Code::Storage, format!("stored file {name}: {why}"));
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 30));
    for (offset, chunk) in chunks {
        if offset >= size {
            continue; // past the end: left by no commit of ours, but harmless
        }
        if offset != bytes.len() as u64 {
            return Err(corrupt(format!(
                "chunk at {offset} missing its predecessor"
            )));
        }
        let want = (size - offset).min(CHUNK_BYTES) as usize;
        if chunk.len() < want {
            return Err(corrupt(format!(
                "chunk at {offset} is {} bytes, need {want}",
                chunk.len()
            )));
        }
        bytes.extend_from_slice(&chunk[..want]);
    }
    if bytes.len() as u64 != size {
        return Err(corrupt(format!(
            "holds {} of its {size} bytes",
            bytes.len()
        )));
    }
    Ok(bytes)
}
