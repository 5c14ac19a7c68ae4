//! Server text the SDK hands over as sent (a page's next cursor) made safe
//! to print on stderr as the SDK shows its own: control characters
//! escaped, the token masked, the length bounded.

use conduit_sdk::shown::MESSAGE_LIMIT;

/// What replaces the token, as in the SDK's messages.
const MASK: &str = "[redacted]";

/// One line of at most the SDK's message limit.
pub fn message(text: &str) -> String {
    let limit = MESSAGE_LIMIT;
    let masked = match std::env::var("CONDUIT_API_TOKEN") {
        Ok(token) if !token.is_empty() => text.replace(&token, MASK),
        _ => text.to_owned(),
    };
    let mut out = String::new();
    for (shown, c) in masked.chars().enumerate() {
        if out.len() >= limit {
            let left = masked.chars().count() - shown;
            out.push_str(&format!("… [cut: {left} characters not shown]"));
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_text_cut() {
        assert_eq!(
            message("\u{1b}[31mboom\u{8}\r\n"),
            "\\u{1b}[31mboom\\u{8}\\r\\n"
        );
        let long = "x".repeat(MESSAGE_LIMIT + 10);
        assert!(message(&long).ends_with("… [cut: 10 characters not shown]"));
    }
}
