//! Request URLs from the client's base URL, parsed once per client.
//!
//! Progenitor formats `{baseurl}{path}` into a string for every request, and
//! reqwest parses all of it again, host included (IDNA and all): about a
//! twentieth of a call's instructions. conduit-codegen rewrites that
//! `format!` into [`of`], which parses only the path against the cached
//! base. The URL is the one the string would have parsed to; where that is
//! not certain (an unusual base, a `?` or `#` in the path) the whole string
//! is parsed as before.

use std::fmt::{self, Display, Write};

use reqwest::Url;

/// What [`of`] keeps of a client's base URL.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    /// The base URL as given, to notice hooks moved to another client.
    given: String,
    /// The base, parsed, when a path can be set on it in place of parsing
    /// `given` + path.
    parsed: Option<Url>,
    /// The part of `parsed`'s path that `given` holds: all of it, or none
    /// when `given` ends at the host (parsing adds the root's `/`).
    stem: usize,
}

impl Base {
    fn new(given: &str) -> Self {
        let parsed = Url::parse(given).ok().filter(|url| settable(given, url));
        let stem = parsed
            .as_ref()
            .filter(|url| url.as_str() == given)
            .map_or(0, |url| url.path().len());
        Self {
            given: given.to_owned(),
            parsed,
            stem,
        }
    }
}

/// Whether parsing `given` + `/path` gives `url` with the path set to
/// `url.path()` + `/path`: an http(s) URL with no query or fragment whose
/// given form is already its serialization (or that, less the root `/`).
fn settable(given: &str, url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
        && url.query().is_none()
        && url.fragment().is_none()
        && (url.as_str() == given
            || (url.path() == "/" && url.as_str().strip_suffix('/') == Some(given)))
}

/// `client`'s base URL followed by `path`, an operation's path with its
/// parameters formatted by [`Segment`]: the URL `format!("{baseurl}{path}")`
/// would parse to.
pub(crate) fn of(client: &crate::Client, path: fmt::Arguments<'_>) -> Result<Url, String> {
    let base = client.inner.base.get_or_init(|| Base::new(&client.baseurl));
    let mut full = String::with_capacity(128);
    if let Some(url) = base
        .parsed
        .as_ref()
        .filter(|_| base.given == client.baseurl)
    {
        full.push_str(&url.path()[..base.stem]);
        full.write_fmt(path).map_err(|_| unformatted())?;
        // A `?` or `#` would start the query when parsed whole, while
        // `set_path` escapes it; parameters never hold one unescaped.
        if full.starts_with('/') && !full.contains(['?', '#']) {
            let mut url = url.clone();
            url.set_path(&full);
            return Ok(url);
        }
        full.clear();
    }
    full.push_str(&client.baseurl);
    full.write_fmt(path).map_err(|_| unformatted())?;
    Url::parse(&full).map_err(|e| invalid(&e.to_string()))
}

fn invalid(why: &str) -> String {
    format!("the request URL is invalid: {why}")
}

fn unformatted() -> String {
    invalid(
        "a path parameter is empty, \".\" or \"..\", or holds a \\ (read as /), \
         so it changes the request path; or it failed to format",
    )
}

/// What becomes of a path parameter's byte.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Byte {
    Plain,
    /// What progenitor's `encode_path` escapes: controls, bytes outside
    /// ASCII and `` "#<>?`{}/%``.
    Escaped,
    /// `\`, which progenitor leaves as it is and URL parsing reads as `/`:
    /// the value would not stay one segment.
    Refused,
}

static BYTES: [Byte; 256] = {
    let mut table = [Byte::Plain; 256];
    let mut b = 0;
    while b < 256 {
        if b < 0x20 || b >= 0x7f {
            table[b] = Byte::Escaped;
        }
        b += 1;
    }
    let more = b" \"#<>?`{}/%";
    let mut i = 0;
    while i < more.len() {
        table[more[i] as usize] = Byte::Escaped;
        i += 1;
    }
    table[b'\\' as usize] = Byte::Refused;
    table
};

/// A path parameter as one escaped segment: what
/// `encode_path(&value.to_string())` gives, written straight into the path
/// instead of through two strings of its own.
///
/// A value that would not stay one segment of its own fails to format
/// (and [`of`] with it): empty, it would merge its neighbours (`a//b`);
/// `.` or `..`, URL normalisation would resolve it away; with a `\`, URL
/// parsing would read a `/`. Each time the request would reach another
/// endpoint. Escaping keeps every other value in its segment (`/` and `%`
/// are escaped), so the request reaches the operation's own path by
/// construction.
pub(crate) struct Segment<'a, T: ?Sized>(pub(crate) &'a T);

impl<T: Display + ?Sized> Display for Segment<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Escaping {
            f,
            written: 0,
            dots: true,
        };
        write!(out, "{}", self.0)?;
        if out.written == 0 || (out.dots && out.written <= 2) {
            return Err(fmt::Error);
        }
        Ok(())
    }
}

/// Escapes what passes through it; the escaping is per byte, so it does not
/// matter how the value is split. Counts what it wrote, and whether that
/// was only dots.
struct Escaping<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    written: usize,
    dots: bool,
}

impl Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.written += s.len();
        // Only a short value can be all dots that matter: no scan after.
        if self.dots && self.written <= 2 {
            self.dots = s.bytes().all(|b| b == b'.');
        }
        // Runs of plain bytes are written whole. They are ASCII, so they
        // start and end on character boundaries.
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            match BYTES[usize::from(b)] {
                Byte::Plain => {}
                Byte::Escaped => {
                    if plain < i {
                        self.f.write_str(&s[plain..i])?;
                    }
                    write!(self.f, "%{b:02X}")?;
                    plain = i + 1;
                }
                Byte::Refused => return Err(fmt::Error),
            }
        }
        if plain < s.len() {
            self.f.write_str(&s[plain..])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn client(base: &str) -> crate::Client {
        // One HTTP client for all: building one loads the TLS roots.
        static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
        let http = HTTP.get_or_init(reqwest::Client::new).clone();
        crate::Client::new_with_client(base, http, crate::Hooks::default())
    }

    /// What progenitor's code did: the whole string, parsed.
    fn parsed_whole(base: &str, path: &str) -> Option<Url> {
        Url::parse(&format!("{base}{path}")).ok()
    }

    const BASES: &[&str] = &[
        "http://127.0.0.1:4010",
        "https://api.conduit.test",
        "https://api.conduit.test/",
        "https://API.Conduit.test",
        "https://api.conduit.test:443",
        "http://[::1]:8080",
        "https://api.conduit.test/proxy",
        "https://api.conduit.test/proxy/",
        "https://api.conduit.test/a/../b",
        "https://api.conduit.test/sp ace",
        "https://user:pw@api.conduit.test/p",
        "https://api.conduit.test?q=1",
        "https://api.conduit.test#f",
        "https://api.conduit.test/%7Ex",
        "file:///tmp",
        "not a url",
        "",
    ];

    #[test]
    fn the_url_is_the_one_the_whole_string_parses_to() {
        let paths = [
            "/v1/custom-tools/abc/run",
            "//v1/x",
            "/v1/a%2Fb/run",
            "/v1/../x",
            "/v1/./x",
            "/v1/a\\b",
            "/v1/é",
        ];
        for base in BASES {
            let client = client(base);
            for path in paths {
                let got = of(&client, format_args!("{path}"));
                match parsed_whole(base, path) {
                    Some(want) => assert_eq!(got.as_ref().map(Url::as_str), Ok(want.as_str())),
                    None => assert!(got.is_err(), "{base} {path}: {got:?}"),
                }
            }
        }
    }

    #[test]
    fn hooks_moved_to_a_client_with_another_base_do_not_carry_its_url() {
        let first = client("https://one.test");
        let _ = of(&first, format_args!("/v1/x"));
        let second = crate::Client::new_with_client(
            "https://two.test/p",
            first.client.clone(),
            first.inner.clone(),
        );
        let url = of(&second, format_args!("/v1/x")).unwrap();
        assert_eq!(url.as_str(), "https://two.test/p/v1/x");
    }

    /// The values a path parameter may not take.
    fn stays_no_segment(value: &str) -> bool {
        matches!(value, "" | "." | "..") || value.contains('\\')
    }

    #[test]
    fn a_parameter_that_would_not_stay_its_own_segment_is_refused() {
        let client = client("https://api.conduit.test/proxy");
        for value in ["", ".", "..", "a\\b", "..\\x", "\\"] {
            let err = of(&client, format_args!("/v1/t/{}/run", Segment(value))).unwrap_err();
            assert!(err.contains("changes the request path"), "{value:?}: {err}");
        }
        // In pieces, as a Display may write it.
        struct Pieces(&'static [&'static str]);
        impl Display for Pieces {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.iter().try_for_each(|p| f.write_str(p))
            }
        }
        let refused = [&[".", "."][..], &["", ".", ""], &[]];
        let kept = [&["...", ""][..], &[".", "a"], &["a", "."], &["..", "."]];
        for pieces in refused {
            let got = of(
                &client,
                format_args!("/v1/t/{}/run", Segment(&Pieces(pieces))),
            );
            assert!(got.is_err(), "{pieces:?}: {got:?}");
        }
        for pieces in kept {
            let got = of(
                &client,
                format_args!("/v1/t/{}/run", Segment(&Pieces(pieces))),
            );
            let want = format!(
                "https://api.conduit.test/proxy/v1/t/{}/run",
                pieces.concat()
            );
            assert_eq!(got.map(String::from), Ok(want), "{pieces:?}");
        }
        // Other dotted values, and any other value, stay in their segment.
        for value in ["...", ".a", "a.", ".hidden"] {
            let url = of(&client, format_args!("/v1/t/{}/run", Segment(value))).unwrap();
            assert_eq!(url.path(), format!("/proxy/v1/t/{value}/run"));
        }
    }

    #[test]
    fn an_invalid_base_is_an_error_naming_the_url() {
        let err = of(&client("not a url"), format_args!("/v1/x")).unwrap_err();
        assert!(err.starts_with("the request URL is invalid"), "{err}");
    }

    proptest! {
        #[test]
        fn a_segment_is_escaped_as_progenitor_escapes_it(
            // Printable ASCII too: most of `any` is not, and ids are.
            value in prop_oneof![any::<String>(), "[ -~]{0,40}"],
        ) {
            let mut ours = String::new();
            match write!(ours, "{}", Segment(&value)) {
                Ok(()) => prop_assert_eq!(ours, progenitor_client::encode_path(&value)),
                Err(_) => prop_assert!(stays_no_segment(&value), "{:?}", value),
            }
        }

        #[test]
        fn any_parameter_gives_the_url_of_the_whole_string(
            base in prop::sample::select(BASES),
            value in prop_oneof![any::<String>(), "[ -~]{0,40}"],
        ) {
            let client = client(base);
            let got = of(&client, format_args!("/v1/custom-tools/{}/run", Segment(&value)));
            let path = format!("/v1/custom-tools/{}/run", progenitor_client::encode_path(&value));
            if stays_no_segment(&value) {
                prop_assert!(got.is_err(), "{:?}", got);
                return Ok(());
            }
            match parsed_whole(base, &path) {
                Some(want) => prop_assert_eq!(got.map(String::from), Ok(want.to_string())),
                None => prop_assert!(got.is_err()),
            }
        }
    }
}
