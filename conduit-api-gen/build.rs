//! Generates the raw client from the vendored spec into OUT_DIR.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let spec = root.join(conduit_codegen::VENDORED_SPEC);
    println!("cargo:rerun-if-changed={}", spec.display());
    let generated =
        conduit_codegen::Source::load(&spec).and_then(|s| conduit_codegen::generate(&s.doc));
    match generated {
        Ok(generated) => {
            let out = Path::new(&std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
                .join("codegen.rs");
            if let Err(e) = std::fs::write(&out, generated.code) {
                eprintln!("error: cannot write {}: {e}", out.display());
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("error: {}: {e}", spec.display());
            std::process::exit(1);
        }
    }
}
