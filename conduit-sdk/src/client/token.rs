//! The API token: checked when the client is built, never shown.

use crate::Error;

/// The token as sent, after checks: outer white space trimmed; inner white
/// space, characters outside visible ASCII and a `Bearer ` prefix refused.
/// No message echoes the token.
pub(crate) fn check(token: Option<&str>) -> Result<&str, Error> {
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::config("an API token is required"))?;
    if token
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
    {
        return Err(Error::config(
            "the API token starts with \"Bearer \": pass the token alone, the SDK adds the prefix",
        ));
    }
    if token.chars().any(char::is_whitespace) {
        return Err(Error::config(
            "the API token contains white space; a token is one word (check for a pasted line break)",
        ));
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::config(
            "the API token contains characters outside visible ASCII; check it was copied whole",
        ));
    }
    Ok(token)
}

/// The gate partition of a token used without a workspace: a short hash,
/// so that neither logs nor shared stores ever hold the token.
pub(crate) fn partition_key(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("token:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_white_space_is_trimmed() {
        assert_eq!(check(Some("  sk_abc\n")).unwrap(), "sk_abc");
    }

    #[test]
    fn tokens_that_cannot_be_right_are_refused_without_echoing_them() {
        for (token, says) in [
            ("Bearer sk_secret1", "pass the token alone"),
            ("bearer sk_secret1", "pass the token alone"),
            ("sk_sec ret1", "white space"),
            ("sk_sec\tret1", "white space"),
            ("sk_sec\u{a0}ret1", "white space"),
            ("sk_secrét1", "visible ASCII"),
            ("sk_sec\u{7f}ret1", "visible ASCII"),
            ("sk_sec\u{0}ret1", "visible ASCII"),
        ] {
            let e = check(Some(token)).unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(e.is_config(), "{token:?}: {text}");
            assert!(text.contains(says), "{token:?}: {text}");
            assert!(
                !text.contains("secret1") && !text.contains("ret1"),
                "{text}"
            );
        }
        assert!(check(None).unwrap_err().to_string().contains("required"));
        assert!(check(Some("   ")).is_err());
    }

    #[test]
    fn the_partition_key_is_a_hash_not_the_token() {
        let key = partition_key("sk_abc");
        assert!(key.starts_with("token:") && key.len() == 18, "{key}");
        assert!(!key.contains("sk_abc"));
        assert_eq!(key, partition_key("sk_abc"));
        assert_ne!(key, partition_key("sk_abd"));
    }
}
