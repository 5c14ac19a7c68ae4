//! Server text as the SDK shows it: in errors (their Display, Debug and
//! accessors) and so in logs and the CLI's stderr.
//!
//! A server is trusted neither to send text fit for a terminal (escape
//! codes can retitle a window, hide lines or fake output) nor to keep the
//! token to itself (some echo the request's headers in error bodies). So
//! every piece of server text an error keeps passes the same treatment first:
//! the client's token is masked, control and bidirectional-formatting
//! characters are escaped, and the text is cut at a documented size with a
//! marker saying so.
//!
//! A URL the SDK was given (base URL, proxy, rate store) is shown with its
//! user info masked, whatever characters the password holds.

use std::sync::Arc;

/// The longest server message an error keeps (`api_message()`, messages
/// quoting the server), in bytes, before the cut marker.
pub const MESSAGE_LIMIT: usize = 1024;
/// The longest body snippet an error keeps (`body_snippet()`), in bytes.
pub const SNIPPET_LIMIT: usize = 512;
/// The longest tool log a [`ToolFailure`](crate::ToolFailure) keeps, in bytes.
pub const LOGS_LIMIT: usize = 16 * 1024;

/// What replaces the token in server text.
pub(crate) const MASK: &str = "[redacted]";

/// Makes server text safe to show; knows the token to mask.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    token: Option<Arc<str>>,
}

impl Redactor {
    pub(crate) fn new(token: &str) -> Self {
        Self {
            token: (!token.is_empty()).then(|| token.into()),
        }
    }

    /// One line of at most [`MESSAGE_LIMIT`] bytes.
    pub(crate) fn message(&self, text: &str) -> String {
        self.show(text.as_bytes(), MESSAGE_LIMIT, false)
    }

    /// The start of a body: one line of at most [`SNIPPET_LIMIT`] bytes,
    /// decoded lossily.
    pub(crate) fn snippet(&self, body: &[u8]) -> String {
        self.show(body, SNIPPET_LIMIT, false)
    }

    /// Tool logs: new lines and tabs kept, at most [`LOGS_LIMIT`] bytes.
    pub(crate) fn logs(&self, text: &str) -> String {
        self.show(text.as_bytes(), LOGS_LIMIT, true)
    }

    fn show(&self, raw: &[u8], limit: usize, multiline: bool) -> String {
        // Decode a little more than is shown, so that a token starting
        // before the cut is masked whole.
        let window = limit + self.token.as_ref().map_or(0, |t| t.len()) + 16;
        let decoded = String::from_utf8_lossy(&raw[..raw.len().min(window)]);
        let masked = self.mask(&decoded);
        let mut out = String::with_capacity(masked.len().min(limit) + 32);
        let mut shown_bytes = 0;
        let mut cut = false;
        for c in masked.chars() {
            let before = out.len();
            push_escaped(&mut out, c, multiline);
            if out.len() > limit {
                out.truncate(before);
                cut = true;
                break;
            }
            shown_bytes += c.len_utf8();
        }
        if cut || raw.len() > window {
            out.push_str(&format!(
                "… [cut: {} bytes not shown]",
                raw.len().saturating_sub(shown_bytes)
            ));
        }
        out
    }

    fn mask(&self, text: &str) -> String {
        let Some(token) = self.token.as_deref() else {
            return text.to_owned();
        };
        let mut masked = text.replace(token, MASK);
        // A JSON body may carry it with `/` escaped.
        if token.contains('/') {
            masked = masked.replace(&token.replace('/', "\\/"), MASK);
        }
        masked
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor")
    }
}

/// What replaces a URL's user info.
pub(crate) const URL_MASK: &str = "***";

/// `raw` as messages, Debug output and logs show a URL: any user info
/// (`user:password@`) replaced by `***`.
///
/// The user info runs from the scheme's `://` (or the start, without a
/// scheme) to the **last** `@` of the whole string. A password may hold an
/// unencoded `/`, `?`, `#` or `@`, so where the authority ends is
/// ambiguous; masking through the last `@` may hide part of a path, never
/// leave a secret.
pub(crate) fn mask_url(raw: &str) -> String {
    let start = raw
        .find("://")
        .filter(|&i| is_scheme(&raw[..i]))
        .map_or(0, |i| i + 3);
    match raw[start..].rfind('@') {
        Some(at) => format!("{}{URL_MASK}{}", &raw[..start], &raw[start + at..]),
        None => raw.to_owned(),
    }
}

/// Whether `s` is a URL scheme (RFC 3986: a letter, then letters, digits,
/// `+`, `-` or `.`); a `://` after anything else is inside the user info.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Pushes `c`, or a visible escape for a character a terminal would act on.
fn push_escaped(out: &mut String, c: char, multiline: bool) {
    match c {
        '\n' | '\t' if multiline => out.push(c),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() || is_bidi_control(c) => {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
        c => out.push(c),
    }
}

/// Characters that reorder how text around them is displayed.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "sk_live_AbC/123";

    #[test]
    fn terminal_controls_are_escaped() {
        let r = Redactor::default();
        let hostile = "a\u{1b}]0;pwned\u{7}b\u{1b}[31mred\u{8}\u{8}\r\nnext\u{9b}c\u{202e}x";
        let shown = r.message(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert_eq!(
            shown,
            "a\\u{1b}]0;pwned\\u{7}b\\u{1b}[31mred\\u{8}\\u{8}\\r\\nnext\\u{9b}c\\u{202e}x"
        );
        // Logs keep their lines and tabs, nothing else.
        assert_eq!(r.logs("a\n\tb\u{1b}c"), "a\n\tb\\u{1b}c");
    }

    #[test]
    fn the_token_is_masked_even_json_escaped_or_at_the_cut() {
        let r = Redactor::new(TOKEN);
        assert_eq!(
            r.message("bad header: Bearer sk_live_AbC/123"),
            "bad header: Bearer [redacted]"
        );
        assert_eq!(
            r.message(r#"{"authorization":"Bearer sk_live_AbC\/123"}"#),
            r#"{"authorization":"Bearer [redacted]"}"#
        );
        // A token straddling the snippet's cut is masked whole.
        let mut body = "x".repeat(SNIPPET_LIMIT - 5).into_bytes();
        body.extend_from_slice(TOKEN.as_bytes());
        body.extend_from_slice(&[b'y'; 100]);
        let shown = r.snippet(&body);
        assert!(!shown.contains("sk_live"), "{shown}");
        assert!(!shown.contains("AbC"), "{shown}");
    }

    #[test]
    fn url_user_info_is_masked_whatever_the_password_holds() {
        assert_eq!(mask_url("https://u:p@h/x?y#z"), "https://***@h/x?y#z");
        assert_eq!(mask_url("u:p@h"), "***@h");
        assert_eq!(mask_url("https://u:p@"), "https://***@");
        assert_eq!(mask_url("redis://h:6379/0"), "redis://h:6379/0");
        assert_eq!(mask_url("not a url"), "not a url");
        // Reserved characters, unencoded, in the user and the password.
        for c in ["/", "?", "#", "@", ":", "%", " ", "://", "/?#@: %"] {
            for (url, host) in [
                (format!("http://u:PX{c}PASS999@127.0.0.1:9"), "@127.0.0.1:9"),
                (
                    format!("redis://:RD{c}PASS777@127.0.0.1:16390/0"),
                    "@127.0.0.1:16390/0",
                ),
                (format!("socks5://US{c}ER999:PASS@p:1080"), "@p:1080"),
                (format!("PX{c}PASS999@h"), "@h"),
            ] {
                let shown = mask_url(&url);
                assert!(
                    !shown.contains("PASS") && !shown.contains("ER999"),
                    "{url} -> {shown}"
                );
                assert!(shown.ends_with(host), "{url} -> {shown}");
            }
        }
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        let r = Redactor::default();
        let shown = r.message(&"z".repeat(1 << 20));
        assert!(shown.len() < MESSAGE_LIMIT + 64, "{}", shown.len());
        assert!(
            shown.ends_with(&format!(
                "… [cut: {} bytes not shown]",
                (1 << 20) - MESSAGE_LIMIT
            )),
            "{shown}"
        );
        assert_eq!(r.message("short"), "short");
        // Escapes count towards the limit; the cut falls between characters.
        let shown = r.message(&"\u{1b}é".repeat(1000));
        assert!(shown.len() <= MESSAGE_LIMIT + 64);
        assert!(shown.contains("[cut:"));
    }
}
