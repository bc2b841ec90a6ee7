//! Where configuration values come from, in increasing precedence: the embedded defaults, the
//! TOML file, `UPGATE_<KEY>` environment variables, command-line flags. [`Layers`] applies them
//! in that order and remembers which layer set each key, so an error names the file and line,
//! the variable, or the flag — and `upgate config print` can say where each value came from.
//!
//! A value given as text (a variable, `--set key=value`) is read the way an operator writes it:
//! `UPGATE_LISTEN=0.0.0.0:8080`, `UPGATE_FSYNC=false`, `UPGATE_CALLBACK_ALLOW=a.example,b.example`
//! (or a TOML array), and an empty value unsets an optional key (`public_url`, `admin_token`).

use std::collections::BTreeMap;

use super::{Config, ConfigError, Invalid};

/// Keys whose values never appear in messages.
pub const SECRET_KEYS: &[&str] = &["admin_token"];

/// Where a key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    /// File name and line.
    File(String, Option<usize>),
    /// The variable's name.
    Env(String),
    /// The flag as written (`--listen`, `--set threads`).
    Flag(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(file, Some(line)) => write!(f, "{file}:{line}"),
            Origin::File(file, None) => f.write_str(file),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag(flag) => f.write_str(flag),
        }
    }
}

/// A configuration being assembled, layer by layer.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    config: Config,
    origins: BTreeMap<String, Origin>,
    warnings: Vec<String>,
}

impl Layers {
    /// Starts from a TOML file (its values are not validated yet: [`Layers::finish`] does).
    pub fn from_file(path: &std::path::Path) -> Result<Layers, ConfigError> {
        let name = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{name}: {e}")))?;
        let config = parse_toml(&text, &name)?;
        let origins = Config::keys()
            .into_iter()
            .filter_map(|k| key_line(&text, &k).map(|line| (k, line)))
            .map(|(k, line)| (k, Origin::File(name.clone(), Some(line))))
            .collect();
        Ok(Layers {
            config,
            origins,
            warnings: Vec::new(),
        })
    }

    /// Applies every `UPGATE_<KEY>` variable of `vars`. A variable that names no key is a
    /// warning, not an error: the environment is shared with other programs and tools.
    pub fn env<I, K, V>(mut self, vars: I) -> Result<Layers, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let keys = Config::keys();
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .filter(|(k, _)| k.starts_with("UPGATE_"))
            .collect();
        vars.sort();
        for (var, value) in vars {
            let key = var["UPGATE_".len()..].to_ascii_lowercase();
            if !keys.contains(&key) {
                let hint = suggest(&key, &keys)
                    .map(|k| format!(" (did you mean {}?)", Config::env_var(k)))
                    .unwrap_or_default();
                self.warnings.push(format!(
                    "environment variable {var} names no configuration key; ignored{hint}"
                ));
                continue;
            }
            self.set(&key, &value, Origin::Env(var))?;
        }
        Ok(self)
    }

    /// Applies `--set key=value`.
    pub fn set_flag(mut self, assignment: &str) -> Result<Layers, ConfigError> {
        let Some((key, value)) = assignment.split_once('=') else {
            return Err(ConfigError(format!(
                "--set {assignment}: expected KEY=VALUE"
            )));
        };
        let key = key.trim();
        let origin = Origin::Flag(format!("--set {key}"));
        if !Config::keys().iter().any(|k| k == key) {
            return Err(ConfigError(format!("{origin}: {}", unknown_key(key))));
        }
        self.set(key, value, origin)?;
        Ok(self)
    }

    /// Applies a typed flag (`--listen`, …) that clap has already parsed.
    pub fn flag(mut self, flag: &str, key: &str, apply: impl FnOnce(&mut Config)) -> Layers {
        apply(&mut self.config);
        self.origins
            .insert(key.to_owned(), Origin::Flag(flag.to_owned()));
        self
    }

    /// Validates the result; an invalid value is reported with its origin.
    pub fn finish(self) -> Result<Loaded, ConfigError> {
        if let Err(inv) = self.config.check() {
            let origin = self.origin(inv.key);
            return Err(ConfigError(match origin {
                Origin::Default => format!("{}: {}", inv.key, inv.message),
                origin => format!("{origin}: {}: {}", inv.key, inv.message),
            }));
        }
        Ok(Loaded {
            config: self.config,
            origins: self.origins,
            warnings: self.warnings,
        })
    }

    fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// Sets `key` from its text form.
    fn set(&mut self, key: &str, raw: &str, origin: Origin) -> Result<(), ConfigError> {
        self.config = with_text(&self.config, key, raw)
            .map_err(|message| ConfigError(format!("{origin}: {key}: {message}")))?;
        self.origins.insert(key.to_owned(), origin);
        Ok(())
    }
}

/// A validated configuration, where each key came from, and what was ignored.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub origins: BTreeMap<String, Origin>,
    pub warnings: Vec<String>,
}

impl Loaded {
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }
}

/// `config` with `key` set from text. The text is tried as a TOML value first (numbers,
/// booleans, arrays), then as a plain string, so both `UPGATE_THREADS=4` and
/// `UPGATE_LISTEN=0.0.0.0:8080` read naturally.
fn with_text(config: &Config, key: &str, raw: &str) -> Result<Config, String> {
    let defaults = serde_json::to_value(Config::default()).map_err(|e| e.to_string())?;
    let kind = &defaults[key];
    let toml::Value::Table(mut table) = toml::Value::try_from(config).map_err(|e| e.to_string())?
    else {
        unreachable!("Config serialises to a table");
    };
    let trimmed = raw.trim();
    // An empty value unsets an optional key.
    if kind.is_null() && trimmed.is_empty() {
        table.remove(key);
        return deserialize(table);
    }
    let literal = toml::from_str::<toml::Table>(&format!("v = {trimmed}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_str());
    let mut candidates = Vec::new();
    if kind.is_array() && !trimmed.starts_with('[') {
        let items = trimmed
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| toml::Value::String(s.to_owned()))
            .collect();
        candidates.push(toml::Value::Array(items));
    } else {
        candidates.extend(literal);
        candidates.push(toml::Value::String(raw.to_owned()));
    }
    let mut first_error = None;
    for value in candidates {
        let mut t = table.clone();
        t.insert(key.to_owned(), value);
        match deserialize(t) {
            Ok(c) => return Ok(c),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_default())
}

fn deserialize(table: toml::Table) -> Result<Config, String> {
    toml::Value::Table(table)
        .try_into::<Config>()
        .map_err(|e| e.message().trim().to_owned())
}

/// Every problem of a configuration file at once (`upgate config check`): each unknown key,
/// each value of the wrong type, then each value out of range, one message per problem
/// (`origin:line: key: message`). A TOML syntax error is reported alone: nothing after it can
/// be read reliably.
pub fn check_file(path: &std::path::Path) -> Result<(), Vec<String>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{name}: {e}")])?;
    let table: toml::Table = match toml::from_str(&text) {
        Ok(t) => t,
        Err(_) => return parse_toml(&text, &name).map(|_| ()).map_err(|e| vec![e.0]),
    };
    let keys = Config::keys();
    let mut problems = Vec::new();
    let mut usable = toml::Table::new();
    for (key, value) in table {
        let at = match key_line(&text, &key) {
            Some(line) => format!("{name}:{line}"),
            None => name.clone(),
        };
        if !keys.contains(&key) {
            problems.push(format!("{at}: {key}: {}", unknown_key_hint(&key, &keys)));
            continue;
        }
        let mut alone = toml::Table::new();
        alone.insert(key.clone(), value.clone());
        match deserialize(alone) {
            Ok(_) => {
                usable.insert(key, value);
            }
            Err(message) => {
                let message = match SECRET_KEYS.contains(&key.as_str()) {
                    true => "must be a string (value not shown)".to_owned(),
                    false => message,
                };
                problems.push(format!("{at}: {key}: {message}"));
            }
        }
    }
    if let Ok(config) = deserialize(usable) {
        problems.extend(
            config
                .problems()
                .iter()
                .map(|inv| in_file(&text, &name, inv).0),
        );
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems),
    }
}

/// Parses TOML without validating ranges; errors read `origin:line: key: message`.
pub fn parse_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let message = e.message().trim();
        let keys = Config::keys();
        let (key, message) = match message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split_once('`'))
        {
            Some((key, _)) => (Some(key.to_owned()), unknown_key_hint(key, &keys)),
            None => (line.and_then(|l| key_above(text, l)), message.to_owned()),
        };
        let message = match key.as_deref() {
            Some(k) if SECRET_KEYS.contains(&k) => "must be a string (value not shown)".to_owned(),
            _ => message,
        };
        let at = match line {
            Some(line) => format!("{origin}:{line}"),
            None => origin.to_owned(),
        };
        ConfigError(match key {
            Some(key) => format!("{at}: {key}: {message}"),
            None => format!("{at}: {message}"),
        })
    })
}

/// An invalid value of a file, reported at the line that sets it.
pub fn in_file(text: &str, origin: &str, inv: &Invalid) -> ConfigError {
    match key_line(text, inv.key) {
        Some(line) => ConfigError(format!("{origin}:{line}: {}: {}", inv.key, inv.message)),
        None => ConfigError(format!("{origin}: {}: {}", inv.key, inv.message)),
    }
}

fn unknown_key(key: &str) -> String {
    unknown_key_hint(key, &Config::keys())
}

fn unknown_key_hint(key: &str, keys: &[String]) -> String {
    match suggest(key, keys) {
        Some(k) => format!("unknown key (did you mean `{k}`?)"),
        None => "unknown key".to_owned(),
    }
}

/// The assignment key of a line (`key = …`), if it is one.
fn assigned_key(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let valid = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    valid.then_some(key)
}

/// The line (1-based) where `key` is assigned.
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| assigned_key(l) == Some(key))
        .map(|i| i + 1)
}

/// The key assigned at `line` or, for a value spread over lines (an array), the nearest line
/// above that assigns one.
fn key_above(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines[..line.min(lines.len())]
        .iter()
        .rev()
        .find_map(|l| assigned_key(l))
        .map(str::to_owned)
}

/// The known key closest to a misspelt one (at most 2 edits away).
fn suggest<'a>(key: &str, keys: &'a [String]) -> Option<&'a str> {
    keys.iter()
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn text_values_read_as_operators_write_them() {
        let l = Layers::default()
            .env(env(&[
                ("UPGATE_LISTEN", "0.0.0.0:9000"),
                ("UPGATE_THREADS", "3"),
                ("UPGATE_FSYNC", "false"),
                ("UPGATE_ADMIN_TOKEN", "1234"),
                ("UPGATE_CALLBACK_ALLOW", "a.example, b.example:8080"),
                ("UPGATE_EXPECT", "optional"),
                ("UPGATE_LOG_FORMAT", "json"),
                ("HOME", "/root"),
            ]))
            .unwrap()
            .finish()
            .unwrap();
        let c = &l.config;
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.threads, 3);
        assert!(!c.fsync);
        assert_eq!(c.admin_token.as_deref(), Some("1234"));
        assert_eq!(c.callback_allow, ["a.example", "b.example:8080"]);
        assert_eq!(c.expect, super::super::ExpectPolicy::Optional);
        assert_eq!(c.log_format, super::super::LogFormat::Json);
        assert_eq!(l.origin("threads"), Origin::Env("UPGATE_THREADS".into()));
        assert_eq!(l.origin("linger_ms"), Origin::Default);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }

    #[test]
    fn toml_arrays_and_empty_values() {
        let c = Layers::default()
            .env(env(&[
                ("UPGATE_CALLBACK_ALLOW", r#"["x.example"]"#),
                ("UPGATE_PUBLIC_URL", ""),
            ]))
            .unwrap()
            .finish()
            .unwrap()
            .config;
        assert_eq!(c.callback_allow, ["x.example"]);
        assert_eq!(c.public_url, None);
    }

    #[test]
    fn bad_values_name_the_variable_or_flag() {
        let e = Layers::default()
            .env(env(&[("UPGATE_THREADS", "many")]))
            .unwrap_err();
        assert!(
            e.0.starts_with("environment variable UPGATE_THREADS: threads: invalid type"),
            "{e}"
        );
        let e = Layers::default()
            .env(env(&[("UPGATE_CALLBACK_WORKERS", "0")]))
            .unwrap()
            .finish()
            .unwrap_err();
        assert_eq!(
            e.0,
            "environment variable UPGATE_CALLBACK_WORKERS: callback_workers: must be greater than 0"
        );
        let e = Layers::default().set_flag("fsink=true").unwrap_err();
        assert_eq!(e.0, "--set fsink: unknown key (did you mean `fsync`?)");
        let e = Layers::default().set_flag("expect=sometimes").unwrap_err();
        assert!(
            e.0.starts_with("--set expect: expect: unknown variant"),
            "{e}"
        );
    }

    #[test]
    fn unknown_variables_are_warnings_with_a_hint() {
        let l = Layers::default()
            .env(env(&[("UPGATE_LISTNE", "x"), ("UPGATE_LOG", "debug")]))
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(l.warnings.len(), 2);
        assert!(
            l.warnings[0].contains("UPGATE_LISTNE") && l.warnings[0].contains("UPGATE_LISTEN"),
            "{:?}",
            l.warnings
        );
    }

    #[test]
    fn file_errors_name_line_and_key() {
        let e = parse_toml("fsync = true\nheader_timeout_ms = \"soon\"\n", "f.toml").unwrap_err();
        assert!(
            e.0.starts_with("f.toml:2: header_timeout_ms: invalid type"),
            "{e}"
        );
        let e = parse_toml("\nlistne = \"x\"\n", "f.toml").unwrap_err();
        assert_eq!(
            e.0,
            "f.toml:2: listne: unknown key (did you mean `listen`?)"
        );
        let e = parse_toml("callback_allow = [\n  \"a\",\n  3,\n]\n", "f.toml").unwrap_err();
        assert!(e.0.starts_with("f.toml:3: callback_allow: "), "{e}");
        let e = parse_toml("admin_token = 123456789\n", "f.toml").unwrap_err();
        assert_eq!(
            e.0,
            "f.toml:1: admin_token: must be a string (value not shown)"
        );
        let e = Config::from_toml("# c\nmax_head_bytes = 10\n", "f.toml").unwrap_err();
        assert_eq!(e.0, "f.toml:2: max_head_bytes: must be at least 1024");
    }

    #[test]
    fn flags_beat_env_which_beats_the_file() {
        let dir = std::env::temp_dir().join(format!("upgate-layers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "threads = 1\nlinger_ms = 1\nfsync = false\n").unwrap();
        let l = Layers::from_file(&file)
            .unwrap()
            .env(env(&[("UPGATE_LINGER_MS", "2"), ("UPGATE_FSYNC", "true")]))
            .unwrap()
            .set_flag("linger_ms=3")
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(
            (l.config.threads, l.config.fsync, l.config.linger_ms),
            (1, true, 3)
        );
        assert_eq!(
            l.origin("threads"),
            Origin::File(file.display().to_string(), Some(1))
        );
        assert_eq!(
            l.origin("linger_ms"),
            Origin::Flag("--set linger_ms".into())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn suggestions() {
        let keys = Config::keys();
        assert_eq!(suggest("fsink", &keys), Some("fsync"));
        assert_eq!(suggest("completely_else", &keys), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
