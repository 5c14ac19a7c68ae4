//! `KEY=VALUE` and `KEY:=JSON` items, written as httpie takes them.

use serde_json::Value;

/// `KEY=VALUE` (a string) or `KEY:=JSON` (a raw JSON value), split at the
/// first `=` or `:=`.
pub fn parse_item(item: &str) -> Result<(String, Value), String> {
    let Some(eq) = item.find('=') else {
        return Err(format!("item {item:?} is neither KEY=VALUE nor KEY:=JSON"));
    };
    let (key, value) = match item[..eq].strip_suffix(':') {
        Some(key) => {
            let json = &item[eq + 1..];
            let value = serde_json::from_str(json)
                .map_err(|e| format!("item {key:?}: {json:?} is not valid JSON ({e})"))?;
            (key, value)
        }
        None => (&item[..eq], Value::String(item[eq + 1..].to_owned())),
    };
    if key.is_empty() {
        return Err(format!("item {item:?} has an empty KEY"));
    }
    Ok((key.to_owned(), value))
}
