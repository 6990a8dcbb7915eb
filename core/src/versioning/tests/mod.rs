#[cfg(not(target_arch = "wasm32"))]
mod proptests;
mod scenarios;
#[cfg(not(target_arch = "wasm32"))]
mod sim;
#[cfg(not(target_arch = "wasm32"))]
mod wire;
