//! With the `codegen` feature (the default), generates the raw client from
//! the vendored spec into OUT_DIR. Without it, `src/generated.rs` is used.

fn main() {
    #[cfg(feature = "codegen")]
    conduit_codegen::out_dir::write(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        |generated| vec![("codegen.rs", generated.code), ("mock.rs", generated.mock)],
    );
}
