//! What a regeneration changed, read off two renderings of SURFACE.md.

/// Added (`+`), removed (`-`) and changed (`~`) `### ` sections between two
/// renderings of SURFACE.md, labelled by their `## ` heading.
pub fn section_changes(old: &str, new: &str) -> Vec<String> {
    let sections = |text: &str| {
        let mut out = std::collections::BTreeMap::new();
        let (mut group, mut title, mut body) = (String::new(), None::<String>, String::new());
        for line in text.lines().chain(std::iter::once("## end")) {
            if line.starts_with("## ") || line.starts_with("### ") {
                if let Some(t) = title.take() {
                    out.insert(t, std::mem::take(&mut body));
                }
                if let Some(g) = line.strip_prefix("## ") {
                    group = g.to_lowercase();
                } else {
                    let name = line[4..].split(':').next().unwrap_or_default();
                    title = Some(format!("{} {}", group.trim_end_matches('s'), name));
                }
            } else if title.is_some() {
                body.push_str(line);
                body.push('\n');
            }
        }
        out
    };
    let (old, new) = (sections(old), sections(new));
    let mut out = Vec::new();
    for (name, body) in &new {
        match old.get(name) {
            None => out.push(format!("+ {name}")),
            Some(b) if b != body => out.push(format!("~ {name}")),
            _ => {}
        }
    }
    out.extend(
        old.keys()
            .filter(|k| !new.contains_key(*k))
            .map(|k| format!("- {k}")),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_changes_reports_added_removed_and_changed() {
        let old = "## Operations\n\n### `a`: GET /a\n- x\n### `b`: GET /b\n- y\n## Types\n\n### `T`\n- `f: String`\n";
        let new = "## Operations\n\n### `a`: GET /a\n- x2\n### `c`: GET /c\n- z\n## Types\n\n### `T`\n- `f: String`\n";
        assert_eq!(
            section_changes(old, new),
            vec!["~ operation `a`", "+ operation `c`", "- operation `b`"]
        );
    }
}
