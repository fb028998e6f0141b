//! The manual agrees with the binary.
//!
//! - `docs/cli.md` documents exactly the commands `borderflow --help` lists
//!   (a `## `borderflow <command>`` heading each), and under each command
//!   exactly the long flags `borderflow <command> --help` prints (bullets
//!   starting ``- `--flag``); flags every command accepts are documented
//!   once, under `## Global options`.
//! - The ```` ```toml reference ```` block of `docs/configuration.md` is a
//!   post configuration `borderflow check` accepts, and it uses every key the
//!   page's tables document, so every documented key exists.
//! - Every `borderflow` command and `make` target that README.md and
//!   `docs/*.md` show exists.
//!
//! Paths are relative to the root package (`CARGO_MANIFEST_DIR`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn borderflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_borderflow")).args(args).output().expect("the borderflow binary runs")
}

/// Standard output of a `--help` call that must succeed.
fn help(args: &[&str]) -> String {
    let out = borderflow(args);
    assert!(out.status.success(), "borderflow {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands clap lists under `Commands:` (without `help`).
fn help_commands(help: &str) -> BTreeSet<String> {
    let mut commands = BTreeSet::new();
    let mut inside = false;
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        if line.trim().is_empty() || !line.starts_with(' ') {
            break;
        }
        // A command's line is indented by two spaces; a wrapped description deeper.
        if line.starts_with("  ") && !line[2..].starts_with(' ') {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name != "help" {
                commands.insert(name.to_string());
            }
        }
    }
    commands
}

/// The long flags of a help text, from the lines that define options
/// (`  -h, --help`, `      --config <CONFIG>`), without --help and --version.
fn help_flags(help: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let rest = if trimmed.starts_with("--") {
            trimmed
        } else if let Some(rest) = trimmed.strip_prefix('-').and_then(|t| t.get(1..)).and_then(|t| t.strip_prefix(", ")) {
            if !rest.starts_with("--") {
                continue;
            }
            rest
        } else {
            continue;
        };
        let flag = long_flag(rest);
        if flag != "--help" && flag != "--version" {
            flags.insert(flag);
        }
    }
    flags
}

/// `--name` at the start of `text` (which starts with `--`).
fn long_flag(text: &str) -> String {
    let name: String = text[2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    format!("--{name}")
}

/// Long flags that take a value, in a help text (`--workers <WORKERS>`).
fn flags_with_values(help: &str) -> BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter_map(|l| l.strip_prefix("-").map(|_| l))
        .filter(|l| l.contains('<'))
        .filter_map(|l| l.find("--").map(|i| long_flag(&l[i..])))
        .collect()
}

/// What docs/cli.md documents: per command (its `## `borderflow <command>``
/// heading), and under `## Global options` (key ""), the flags of its
/// ``- `--flag`` bullets.
struct CliDocs {
    commands: BTreeMap<String, BTreeSet<String>>,
    global: BTreeSet<String>,
}

fn cli_docs() -> CliDocs {
    enum Section {
        Command(String),
        Global,
        Other,
    }
    let text = read("docs/cli.md");
    let mut docs = CliDocs { commands: BTreeMap::new(), global: BTreeSet::new() };
    let mut section = Section::Other;
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if let Some(heading) = line.strip_prefix("## ") {
            let heading = heading.trim();
            section = if let Some(name) = heading.strip_prefix("`borderflow ").and_then(|h| h.strip_suffix('`')) {
                assert!(
                    docs.commands.insert(name.to_string(), BTreeSet::new()).is_none(),
                    "docs/cli.md documents `borderflow {name}` twice"
                );
                Section::Command(name.to_string())
            } else if heading == "Global options" {
                Section::Global
            } else {
                Section::Other
            };
            continue;
        }
        if line.starts_with('#') {
            section = Section::Other;
            continue;
        }
        let Some(bullet) = line.strip_prefix("- `--") else { continue };
        let flag = long_flag(&format!("--{bullet}"));
        match &section {
            Section::Command(name) => {
                docs.commands.get_mut(name).expect("heading seen").insert(flag);
            }
            Section::Global => {
                docs.global.insert(flag);
            }
            Section::Other => {}
        }
    }
    docs
}

#[test]
fn every_command_is_documented_and_every_documented_command_exists() {
    let listed = help_commands(&help(&["--help"]));
    assert!(!listed.is_empty(), "no `Commands:` section found in `borderflow --help`");
    let documented: BTreeSet<String> = cli_docs().commands.keys().cloned().collect();
    let mut problems = Vec::new();
    for missing in listed.difference(&documented) {
        problems.push(format!("`borderflow {missing}` exists but docs/cli.md has no \"## `borderflow {missing}`\" heading"));
    }
    for extra in documented.difference(&listed) {
        problems.push(format!("docs/cli.md documents `borderflow {extra}`, which `borderflow --help` does not list"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_flag_is_documented_under_its_command() {
    let docs = cli_docs();
    let root_help = help(&["--help"]);
    let global = help_flags(&root_help);
    let mut problems = Vec::new();
    for flag in global.difference(&docs.global) {
        problems.push(format!("global flag {flag} (in `borderflow --help`) is not under \"## Global options\" in docs/cli.md"));
    }
    for flag in docs.global.difference(&global) {
        problems.push(format!("docs/cli.md lists global flag {flag}, which `borderflow --help` does not print"));
    }
    let commands = help_commands(&root_help);
    for (command, documented) in &docs.commands {
        if !commands.contains(command) {
            continue; // reported by the other test
        }
        let printed = help_flags(&help(&[command.as_str(), "--help"]));
        for flag in documented.difference(&printed) {
            problems.push(format!("docs/cli.md lists {flag} under `borderflow {command}`, but `borderflow {command} --help` does not print it"));
        }
        for flag in printed.difference(documented) {
            if !global.contains(flag) {
                problems.push(format!("`borderflow {command} --help` prints {flag}, which docs/cli.md does not list under `borderflow {command}`"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The body of the ```` ```toml reference ```` block of docs/configuration.md.
fn reference_block() -> String {
    let text = read("docs/configuration.md");
    let mut lines = text.lines().skip_while(|l| l.trim() != "```toml reference");
    assert!(lines.next().is_some(), "docs/configuration.md has no ```toml reference block");
    let body: Vec<&str> = lines.take_while(|l| l.trim() != "```").collect();
    assert!(!body.is_empty(), "the ```toml reference block is empty");
    body.join("\n") + "\n"
}

/// `(key, commented)` when the line sets a key (`key = …`), or is a
/// commented-out alternative (`# key = …`).
fn key_of(line: &str) -> Option<(String, bool)> {
    let trimmed = line.trim_start();
    let (rest, commented) = match trimmed.strip_prefix('#') {
        Some(rest) => (rest.trim_start(), true),
        None => (trimmed, false),
    };
    let key: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let after = rest[key.len()..].trim_start();
    (!key.is_empty() && after.starts_with('=') && !after.starts_with("==")).then_some((key, commented))
}

/// The `[table]` or `[[table]]` a header line opens.
fn header_of(line: &str) -> Option<String> {
    let trimmed = line.trim();
    if !trimmed.starts_with('[') {
        return None;
    }
    let end = trimmed.rfind(']')?;
    Some(trimmed[..=end].to_string())
}

/// (table, key) pairs the block sets, commented alternatives included.
fn reference_keys(block: &str) -> BTreeSet<(String, String)> {
    let mut table = String::new();
    let mut keys = BTreeSet::new();
    for line in block.lines() {
        if let Some(header) = header_of(line) {
            table = header;
        } else if let Some((key, _)) = key_of(line) {
            keys.insert((table.clone(), key));
        }
    }
    keys
}

/// (table, key) pairs the tables of docs/configuration.md document: rows
/// ``| `key` | …`` under a heading that names a table (``## `[post]` ``).
fn documented_keys() -> BTreeSet<(String, String)> {
    let text = read("docs/configuration.md");
    let mut table: Option<String> = None;
    let mut keys = BTreeSet::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if line.starts_with('#') {
            table = line.split('`').nth(1).filter(|t| t.starts_with('[')).map(str::to_string);
            continue;
        }
        if let (Some(table), Some(row)) = (&table, line.strip_prefix("| `")) {
            let key: String = row.chars().take_while(|c| *c != '`').collect();
            keys.insert((table.clone(), key));
        }
    }
    keys
}

/// The block with its commented alternative at `line` (0-based) in force,
/// and the key line right before it, which it replaces, commented out.
fn with_alternative(block: &str, line: usize) -> String {
    let mut lines: Vec<String> = block.lines().map(str::to_string).collect();
    let replaced = (0..line).rev().find(|&i| key_of(&lines[i]).is_some_and(|(_, commented)| !commented));
    if let Some(i) = replaced {
        lines[i] = format!("# {}", lines[i]);
    }
    lines[line] = lines[line].trim_start().trim_start_matches('#').trim_start().to_string();
    lines.join("\n") + "\n"
}

/// Runs `borderflow check` on `text` written as `post.toml` in `dir`.
/// Passes when the configuration is valid; tolerates only a report of a
/// file it names that does not exist (the example's certificates), never an
/// unknown key, a missing key, a type error or a TOML syntax error.
fn assert_checks(dir: &Path, text: &str, what: &str) {
    let path = dir.join("post.toml");
    std::fs::write(&path, text).expect("write the configuration");
    let out = borderflow(&["check", "--config", path.to_str().expect("a UTF-8 temp path")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for refused in ["unknown field", "TOML syntax error", "required field", "is missing", "expected "] {
        assert!(!stderr.contains(refused), "{what}: `borderflow check` refuses a key or its syntax:\n{stderr}\n--- the configuration:\n{text}");
    }
    if out.status.success() {
        assert!(stdout.contains("valid"), "{what}: `borderflow check` printed:\n{stdout}");
    } else {
        let missing_file = ["does not exist", "cannot read", "No such file"].iter().any(|m| stderr.contains(m));
        assert!(missing_file, "{what}: `borderflow check` failed:\n{stderr}\n--- the configuration:\n{text}");
        eprintln!("{what}: accepted although check reports a missing file: {stderr}");
    }
}

#[test]
fn configuration_reference_is_valid_and_complete() {
    let block = reference_block();

    // Every key the tables document is in the reference block, so checking
    // the block checks that every documented key exists.
    let used = reference_keys(&block);
    let documented = documented_keys();
    assert!(documented.len() > 40, "few keys documented in docs/configuration.md: {documented:?}");
    let missing: Vec<String> = documented.difference(&used).map(|(t, k)| format!("{t} {k}")).collect();
    assert!(missing.is_empty(), "documented in docs/configuration.md but not used in its reference block: {}", missing.join(", "));
    let undocumented: Vec<String> = used.difference(&documented).map(|(t, k)| format!("{t} {k}")).collect();
    assert!(undocumented.is_empty(), "used in the reference block but not documented in a table: {}", undocumented.join(", "));

    // The block names relative paths, resolved against the configuration
    // file's folder: the secrets are the examples' own (copied), the data
    // files `check` requires (`[[table]] path`, `[watchlist] path`) are
    // written here, and the certificates, cameras' clips and frames are not
    // needed by `check`.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("secrets")).expect("secrets folder");
    for secret in ["analyst-tokens.toml", "exchange-keys.toml"] {
        std::fs::copy(root().join("examples/secrets").join(secret), dir.path().join("secrets").join(secret)).expect("copy example secret");
    }
    let mut table = String::new();
    for line in block.lines() {
        if let Some(header) = header_of(line) {
            table = header;
        }
        if let (Some((key, false)), true) = (key_of(line), table == "[[table]]" || table == "[watchlist]")
            && key == "path"
        {
            let value = line.split('"').nth(1).expect("a quoted path");
            let file = dir.path().join(value);
            std::fs::create_dir_all(file.parent().expect("a parent folder")).expect("data folder");
            let content = if table == "[watchlist]" { "plate,reason,severity\nAB123CD,example entry,2\n" } else { "plate,permit\nAB123CD,TIR-0001\n" };
            std::fs::write(&file, content).expect("write a data file");
        }
    }
    assert_checks(dir.path(), &block, "the reference block");

    // Each commented alternative (`# object = …` instead of `path`) is valid too.
    for (index, line) in block.lines().enumerate() {
        if let Some((key, true)) = key_of(line) {
            assert_checks(dir.path(), &with_alternative(&block, index), &format!("the reference block with `{key}`"));
        }
    }
}

/// The targets the Makefile defines.
fn make_targets() -> BTreeSet<String> {
    read("Makefile")
        .lines()
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, rest)| !name.contains(' ') && !name.contains('=') && !rest.starts_with('='))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Inline code spans of markdown text outside fenced blocks (runs of N
/// backticks closed by a run of N), with line breaks made spaces.
fn code_spans(text: &str) -> Vec<String> {
    let mut prose = String::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            prose.push_str(line);
            prose.push(' ');
        }
    }
    let chars: Vec<char> = prose.chars().collect();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|c| **c == '`').count();
        let start = i + run;
        let mut j = start;
        let mut end = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let closing = chars[j..].iter().take_while(|c| **c == '`').count();
                if closing == run {
                    end = Some(j);
                    break;
                }
                j += closing;
            } else {
                j += 1;
            }
        }
        match end {
            Some(end) => {
                spans.push(chars[start..end].iter().collect::<String>().trim().to_string());
                i = end + run;
            }
            None => i = start,
        }
    }
    spans
}

/// Command lines of ```sh / ```console / ```bash / ```shell blocks.
fn shell_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut shell = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            shell = match shell {
                Some(_) => None,
                None => Some(matches!(info.trim(), "sh" | "console" | "bash" | "shell")),
            };
            continue;
        }
        if shell == Some(true) {
            lines.push(trimmed.strip_prefix("$ ").unwrap_or(trimmed).to_string());
        }
    }
    lines
}

/// What a command line asks of `borderflow` or `make`: ("borderflow",
/// command) or ("make", target) pairs.
fn mentioned(line: &str, global_with_values: &BTreeSet<String>) -> Vec<(&'static str, String)> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    // Leading environment assignments (`BORDERFLOW_TOKEN=… borderflow sql …`).
    let tokens: Vec<&str> = tokens
        .iter()
        .copied()
        .skip_while(|t| t.split_once('=').is_some_and(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')))
        .collect();
    let arguments: Option<&[&str]> = match tokens.first() {
        Some(&"borderflow") => Some(&tokens[1..]),
        Some(&"cargo") if tokens.get(1) == Some(&"run") => tokens.iter().position(|t| *t == "--").map(|i| &tokens[i + 1..]),
        Some(&"make") => {
            return tokens[1..]
                .iter()
                .take_while(|t| !t.starts_with('#') && !t.starts_with('&') && !t.starts_with('|') && !t.starts_with(';'))
                .filter(|t| !t.contains('=') && !t.starts_with('-'))
                .map(|t| ("make", t.to_string()))
                .collect();
        }
        _ => None,
    };
    let Some(arguments) = arguments else { return Vec::new() };
    let mut i = 0;
    while i < arguments.len() {
        let token = arguments[i];
        if token.starts_with('-') {
            i += if global_with_values.contains(token) { 2 } else { 1 };
            continue;
        }
        if token.starts_with('#') || token.starts_with('<') || token.starts_with('[') || token == "…" {
            return Vec::new();
        }
        return vec![("borderflow", token.trim_end_matches(['`', ',', '.', ';', ':', ')']).to_string())];
    }
    Vec::new()
}

#[test]
fn commands_and_make_targets_in_readme_and_docs_exist() {
    let root_help = help(&["--help"]);
    let mut commands = help_commands(&root_help);
    commands.insert("help".to_string());
    let global_with_values = flags_with_values(&root_help);
    let targets = make_targets();
    assert!(targets.contains("run") && targets.contains("test"), "Makefile targets: {targets:?}");

    let mut files = vec![PathBuf::from("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| PathBuf::from("docs").join(p.file_name().expect("a file name")))
        .collect();
    pages.sort();
    files.extend(pages);

    let mut problems = Vec::new();
    let mut seen = 0;
    for file in &files {
        let text = read(file.to_str().expect("UTF-8 path"));
        let lines = shell_lines(&text).into_iter().chain(code_spans(&text));
        for line in lines {
            for (tool, name) in mentioned(&line, &global_with_values) {
                seen += 1;
                let exists = match tool {
                    "make" => targets.contains(&name),
                    _ => commands.contains(&name),
                };
                if !exists {
                    problems.push(format!("{}: `{line}` names {tool} {name:?}, which does not exist", file.display()));
                }
            }
        }
    }
    assert!(seen > 10, "few commands found in README.md and docs/ ({seen})");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
