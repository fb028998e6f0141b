//! The configuration text and where it came from: turns byte spans into
//! `file:line:column` errors, and tells which key a syntax error is in.

use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use super::ConfigError;

/// The text being read, its file name for errors, and the folder relative
/// paths are resolved against.
pub(super) struct Source<'a> {
    pub text: &'a str,
    pub file: String,
    /// The configuration file's folder, absolute and without `.`/`..` when the
    /// current directory is known.
    pub base_dir: PathBuf,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str, path: &Path) -> Source<'a> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let absolute = if parent.is_absolute() {
            parent
        } else {
            match std::env::current_dir() {
                Ok(cwd) => cwd.join(parent),
                Err(_) => parent,
            }
        };
        Source { text, file: path.display().to_string(), base_dir: normalize(&absolute) }
    }

    /// An error at the start of `span`.
    pub fn error_at(&self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.line_column(span.start);
        ConfigError { file: self.file.clone(), line, column, field: field.into(), message: message.into() }
    }

    /// An error with no place in the file.
    pub fn error_nowhere(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { file: self.file.clone(), line: 0, column: 0, field: field.into(), message: message.into() }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_column(offset).0
    }

    /// The text of a 1-based line, without its line break ("" past the end).
    pub fn line_text(&self, line: usize) -> &'a str {
        self.text.split('\n').nth(line.saturating_sub(1)).unwrap_or("").trim_end_matches('\r')
    }

    /// The dotted field path (1-based indices into arrays of tables) of the
    /// key on the line holding `offset`, for syntax errors: the parser cannot
    /// say, so the text is scanned for table headers up to that line. `None`
    /// when the line holds no recognisable key or header.
    pub fn field_at(&self, offset: usize) -> Option<String> {
        let error_line = self.line_of(offset);
        let mut table = String::new();
        let mut array_counts: Vec<(String, usize)> = Vec::new();
        let mut in_multiline: Option<&str> = None;
        for (number, line) in self.text.split('\n').enumerate() {
            let number = number + 1;
            let trimmed = line.trim();
            if let Some(delimiter) = in_multiline {
                if trimmed.matches(delimiter).count() % 2 == 1 {
                    in_multiline = None;
                }
                if number == error_line {
                    return None;
                }
                continue;
            }
            let header = table_header(trimmed);
            if let Some((name, is_array)) = header {
                table = if is_array {
                    let count = match array_counts.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, count)) => {
                            *count += 1;
                            *count
                        }
                        None => {
                            array_counts.push((name.clone(), 1));
                            1
                        }
                    };
                    format!("{name}[{count}]")
                } else {
                    name
                };
                if number == error_line {
                    return (!table.is_empty()).then(|| table.clone());
                }
                continue;
            }
            let key = trimmed
                .split_once('=')
                .map(|(key, _)| key.trim())
                .filter(|key| !key.is_empty() && key.chars().all(is_bare_key_char));
            if number == error_line {
                return key.map(|key| if table.is_empty() { key.to_string() } else { format!("{table}.{key}") });
            }
            for delimiter in ["\"\"\"", "'''"] {
                if trimmed.matches(delimiter).count() % 2 == 1 {
                    in_multiline = Some(delimiter);
                }
            }
        }
        None
    }
}

/// The table name of a `[name]` or `[[name]]` header line (and whether it is
/// an array of tables); `None` for anything else, such as the continuation
/// line of a multi-line array (`[0.95, 0.60],`).
fn table_header(line: &str) -> Option<(String, bool)> {
    let (inner, close, is_array) = match line.strip_prefix("[[") {
        Some(inner) => (inner, "]]", true),
        None => (line.strip_prefix('[')?, "]", false),
    };
    let (name, rest) = inner.split_once(close)?;
    let rest = rest.trim();
    let name = name.trim();
    let plausible = !name.is_empty()
        && name.chars().all(|c| is_bare_key_char(c) || c == '"' || c == '\'' || c == ' ')
        && (rest.is_empty() || rest.starts_with('#'));
    plausible.then(|| (name.to_string(), is_array))
}

fn is_bare_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// Removes `.` and resolves `..` without touching the file system (the
/// configuration's paths need not exist yet).
pub(super) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_in_characters() {
        let source = Source::new("a = 1\nnamé = \"x\"\n", Path::new("/tmp/post.toml"));
        assert_eq!(source.line_column(0), (1, 1));
        assert_eq!(source.line_column(6), (2, 1));
        let quote = source.text.find('"').unwrap_or(0);
        assert_eq!(source.line_column(quote), (2, 8));
    }

    #[test]
    fn field_at_counts_arrays_of_tables_from_one() {
        let text = "[post]\nid = \"x\"\n[[camera]]\nid = \"a\"\n[[camera]]\nuri = \"b\n";
        let source = Source::new(text, Path::new("/tmp/post.toml"));
        assert_eq!(source.field_at(text.find("id = \"x").unwrap_or(0)).as_deref(), Some("post.id"));
        assert_eq!(source.field_at(text.find("uri").unwrap_or(0)).as_deref(), Some("camera[2].uri"));
    }

    #[test]
    fn field_at_is_not_fooled_by_multi_line_arrays() {
        let text = "[[camera]]\ncounting_line = [\n  [0.05, 0.6],\n  [0.95, 0.6],\n]\nfrom_side = top\n";
        let source = Source::new(text, Path::new("/tmp/post.toml"));
        assert_eq!(source.field_at(text.find("top").unwrap_or(0)).as_deref(), Some("camera[1].from_side"));
    }

    #[test]
    fn normalize_drops_dots() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
