//! Refusals: a construct outside what standing views maintain, reported
//! with where it stands in the SQL.

use super::{LowerError, Lowering};

pub(super) fn at_position(position: &Option<(usize, usize)>) -> String {
    match position {
        Some((line, column)) => format!(" (line {line}, column {column})"),
        None => String::new(),
    }
}

impl Lowering<'_> {
    /// Where `keyword` (any of its spellings, case-insensitive) first stands
    /// in the SQL, as 1-based line and column. DataFusion's logical plans do
    /// not carry source spans, so the construct is found by its keyword.
    fn position(&self, keywords: &[&str]) -> Option<(usize, usize)> {
        let upper = self.sql.to_uppercase();
        let offset = keywords.iter().filter_map(|k| find_word(&upper, &k.to_uppercase())).min()?;
        let before = &self.sql[..offset.min(self.sql.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Some((line, column))
    }

    pub(super) fn refuse(&self, construct: &str, keywords: &[&str]) -> LowerError {
        LowerError::Unsupported { construct: construct.to_string(), position: self.position(keywords) }
    }
}

/// Byte offset of `word` in `text` where it is not part of a longer word.
pub(super) fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let word_like = word.chars().next().is_some_and(char::is_alphanumeric);
        if !word_like || (!is_word(before) && !is_word(after)) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}
