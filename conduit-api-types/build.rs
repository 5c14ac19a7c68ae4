//! With the `codegen` feature (the default), generates the schemas from the
//! vendored spec into OUT_DIR. Without it, `src/generated.rs` is used.

fn main() {
    #[cfg(feature = "codegen")]
    codegen::run();
}

#[cfg(feature = "codegen")]
mod codegen {
    use std::path::Path;

    pub fn run() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let spec = root.join(conduit_codegen::VENDORED_SPEC);
        println!("cargo:rerun-if-changed={}", spec.display());
        let generated =
            conduit_codegen::Source::load(&spec).and_then(|s| conduit_codegen::generate(&s.doc));
        let generated = match generated {
            Ok(generated) => generated,
            Err(e) => {
                eprintln!("error: {}: {e}", spec.display());
                std::process::exit(1);
            }
        };
        let out_dir = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
        let out = Path::new(&out_dir).join("types.rs");
        if let Err(e) = std::fs::write(&out, generated.types) {
            eprintln!("error: cannot write {}: {e}", out.display());
            std::process::exit(1);
        }
    }
}
