//! The exchange key file (`[peer] hmac_keys`): the versioned secrets two
//! customs services share to pseudonymise plates that cross the border.
//!
//! ```toml
//! current = 2                 # required; the version SQL's plate_hmac(text) uses by default
//!                             # (reads and pre-arrival records are hashed under every version)
//!
//! [[key]]                     # one per valid version: one normally, two during a rotation
//! version = 1                 # required; 1 to 65535, unique
//! secret = "5f1c…"            # required; hex, at least 32 bytes (64 hex digits)
//! ```

use std::path::Path;

use toml::Spanned;

use super::ConfigError;
use super::source::Source;
use crate::plate_hash::ExchangeKeys;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    current: Spanned<u16>,
    #[serde(default)]
    key: Vec<Spanned<RawKey>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    version: Spanned<u16>,
    secret: Spanned<String>,
}

/// Reads and checks a key file; errors name the file, line, column and field.
pub fn read_exchange_keys(path: &Path) -> Result<ExchangeKeys, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        column: 0,
        field: "(file)".into(),
        message: format!("cannot read the key file: {e}"),
    })?;
    parse_exchange_keys(&text, path)
}

/// Parses key file text; `path` names it in errors.
pub fn parse_exchange_keys(text: &str, path: &Path) -> Result<ExchangeKeys, ConfigError> {
    let source = Source::new(text, path);
    let raw: RawKeys = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let field = source.field_at(span.start).unwrap_or_else(|| "(syntax)".into());
        source.error_at(span, field, e.message().to_string())
    })?;
    let mut keys = ExchangeKeys::default();
    for (i, key) in raw.key.iter().enumerate() {
        let field = |name: &str| format!("key[{}].{name}", i + 1);
        let version = *key.get_ref().version.get_ref();
        if version == 0 {
            return Err(source.error_at(key.get_ref().version.span(), field("version"), "key versions start at 1"));
        }
        let secret = key.get_ref().secret.get_ref();
        let bytes = decode_hex(secret).ok_or_else(|| {
            source.error_at(key.get_ref().secret.span(), field("secret"), "not hexadecimal (two digits per byte)")
        })?;
        if bytes.len() < 32 {
            return Err(source.error_at(
                key.get_ref().secret.span(),
                field("secret"),
                format!("{} bytes; a key needs at least 32", bytes.len()),
            ));
        }
        if !keys.insert(version, bytes) {
            return Err(source.error_at(key.get_ref().version.span(), field("version"), format!("version {version} appears twice")));
        }
    }
    let current = *raw.current.get_ref();
    if !keys.set_current(current) {
        return Err(source.error_at(raw.current.span(), "current", format!("no [[key]] has version {current}")));
    }
    Ok(keys)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn reads_two_versions_during_a_rotation() {
        let text = format!("current = 2\n[[key]]\nversion = 1\nsecret = \"{SECRET}\"\n[[key]]\nversion = 2\nsecret = \"{SECRET}\"\n");
        let keys = parse_exchange_keys(&text, Path::new("keys.toml")).unwrap();
        assert_eq!(keys.current(), 2);
        assert_eq!(keys.versions().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn errors_name_line_and_field() {
        let text = "current = 1\n[[key]]\nversion = 1\nsecret = \"abcd\"\n";
        let error = parse_exchange_keys(text, Path::new("keys.toml")).unwrap_err();
        assert_eq!((error.line, error.field.as_str()), (4, "key[1].secret"), "{error}");
        let text = format!("current = 3\n[[key]]\nversion = 1\nsecret = \"{SECRET}\"\n");
        let error = parse_exchange_keys(&text, Path::new("keys.toml")).unwrap_err();
        assert_eq!((error.line, error.field.as_str()), (1, "current"), "{error}");
    }
}
