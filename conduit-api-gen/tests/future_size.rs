//! An operation's future is moved whole into every caller that awaits it,
//! so its size is paid on every call. conduit-codegen scopes each `send`
//! so that values end with the await that needs them (`scopes.rs`): the
//! future holds the exchange's state, not the builder, the request after
//! it is sent or the result after it is unwrapped.

use conduit_api_gen::{Client, Hooks, types};

#[test]
fn an_operations_future_holds_no_dead_values() {
    let client = Client::new("http://127.0.0.1:1", Hooks::default());
    let send = client
        .run_custom_tool()
        .id("tool_1")
        .body(types::RunCustomToolBody::default())
        .send();
    let size = std::mem::size_of_val(&send);
    // 616 bytes with rustc 1.95; 1,144 before the rewrite. The bound
    // leaves room for other compilers' layouts, not for the dead values.
    assert!(size <= 800, "run_custom_tool's future is {size} bytes");
}
