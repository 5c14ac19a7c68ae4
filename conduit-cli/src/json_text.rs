//! JSON text laid out anew without reparsing it: every token (numbers
//! above all) kept exactly as the server wrote it.

/// `text` on one line: white space outside strings removed.
pub fn compact(text: &str) -> String {
    layout(text, None)
}

/// `text` indented by two spaces a level, as `serde_json`'s pretty printer
/// would lay it out.
pub fn indent(text: &str) -> String {
    layout(text, Some("  "))
}

fn layout(text: &str, indent: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    // An opening bracket waits for its first token: `{}` and `[]` stay shut.
    let mut opened = false;
    let newline = |out: &mut String, depth: usize| {
        if let Some(unit) = indent {
            out.push('\n');
            out.push_str(&unit.repeat(depth));
        }
    };
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if opened && c != '}' && c != ']' {
            newline(&mut out, depth);
        }
        match c {
            '{' | '[' => {
                opened = true;
                depth += 1;
                out.push(c);
                continue;
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if !opened {
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(if indent.is_some() { ": " } else { ":" }),
            '"' => {
                in_string = true;
                out.push(c);
            }
            _ => out.push(c),
        }
        opened = false;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENT: &str = "{ \"price\" : 842.250, \"big\":123456789012345678901234,\n \"s\": \"a, b: {c} \\\" d\", \"e\": [], \"o\": {}, \"l\": [1.50, {\"x\": 1e3}] }";

    #[test]
    fn compact_keeps_every_token() {
        assert_eq!(
            compact(SENT),
            r#"{"price":842.250,"big":123456789012345678901234,"s":"a, b: {c} \" d","e":[],"o":{},"l":[1.50,{"x":1e3}]}"#
        );
    }

    #[test]
    fn indent_lays_out_as_serde_would_with_the_tokens_as_sent() {
        let value: serde_json::Value =
            serde_json::from_str(r#"{"a":1,"e":[],"o":{},"l":[2,{"x":3}]}"#).unwrap();
        let ours = indent(r#"{"a":1,"e":[],"o":{},"l":[2,{"x":3}]}"#);
        assert_eq!(ours, serde_json::to_string_pretty(&value).unwrap());
        assert!(indent(SENT).contains("\"price\": 842.250,"));
        assert!(indent(SENT).contains("123456789012345678901234"));
    }
}
