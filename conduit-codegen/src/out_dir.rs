//! What the build scripts of `conduit-api-types` and `conduit-api-gen` do
//! with the `codegen` feature: generate from the vendored spec into
//! `OUT_DIR`, each the files it compiles.

use std::path::Path;

use crate::{Generated, Source, VENDORED_SPEC, generate};

/// Generates from the vendored spec (the workspace root is `root`) and
/// writes the files `pick` names into `OUT_DIR`; reruns when the spec
/// changes. A spec that does not generate, or a file that cannot be
/// written, ends the build with the reason.
pub fn write(root: &Path, pick: impl FnOnce(Generated) -> Vec<(&'static str, String)>) {
    let spec = root.join(VENDORED_SPEC);
    println!("cargo:rerun-if-changed={}", spec.display());
    let generated = match Source::load(&spec).and_then(|s| generate(&s.doc)) {
        Ok(generated) => generated,
        Err(e) => {
            eprintln!("error: {}: {e}", spec.display());
            std::process::exit(1);
        }
    };
    let out_dir = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    for (file, code) in pick(generated) {
        let out = Path::new(&out_dir).join(file);
        if let Err(e) = std::fs::write(&out, code) {
            eprintln!("error: cannot write {}: {e}", out.display());
            std::process::exit(1);
        }
    }
}
