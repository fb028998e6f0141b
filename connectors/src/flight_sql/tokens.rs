//! The analysts' bearer tokens: a file of users and SHA-256 hashes (the
//! tokens themselves are never stored).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// The analysts' tokens: SHA-256 (hex) → user.
#[derive(Clone, Debug, Default)]
pub struct Tokens(HashMap<String, String>);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    user: String,
    sha256: String,
}

impl Tokens {
    /// Reads a tokens file (`[[token]] user = "…", sha256 = "<hex>"`).
    pub fn from_file(path: &std::path::Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("tokens file {}: {e}", path.display()))?;
        let file: TokenFile = toml::from_str(&text).map_err(|e| format!("tokens file {}: {e}", path.display()))?;
        let mut tokens = HashMap::new();
        for (i, entry) in file.token.into_iter().enumerate() {
            let hash = entry.sha256.trim().to_ascii_lowercase();
            if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("tokens file {}: token[{}].sha256: not 64 hex digits", path.display(), i + 1));
            }
            tokens.insert(hash, entry.user);
        }
        Ok(Tokens(tokens))
    }

    /// The user a token belongs to.
    pub fn user(&self, token: &str) -> Option<&str> {
        self.0.get(&hex::encode(Sha256::digest(token.as_bytes()))).map(String::as_str)
    }
}
