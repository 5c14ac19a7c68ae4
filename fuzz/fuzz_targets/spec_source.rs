//! Loading a spec source (reference page, YAML or JSON) and, when it loads,
//! normalising and generating from it: errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &str)| {
    let (kind, text) = input;
    let name = ["page.md", "spec.yaml", "spec.json"][usize::from(kind % 3)];
    if let Ok(source) = conduit_codegen::Source::parse(name, text) {
        let _ = conduit_codegen::generate(&source.doc);
    }
});
