//! Finds hooks by layer (system, user, project), each layer's hooks.json first and then the
//! `[hooks]` table of its config.toml, and decides, per handler, its key, hash, trust status and
//! display order.

use crate::event::HookEvent;
use crate::matcher::Matcher;
use crate::parse::{parse_hooks_json, parse_hooks_toml, CommandHandler, Parsed};
use crate::trust::{current_hash, HookStates, TrustStatus};
use std::path::{Path, PathBuf};

/// Where discovery looks.
#[derive(Debug, Clone)]
pub struct DiscoveryRoots {
    /// The system layer's directory (Tally's stand-in for Codex's `/etc/codex`); `None` skips it.
    pub system_dir: Option<PathBuf>,
    /// The Tally home: `<home>/hooks.json` and the `hooks.state` in `<home>/config.toml`.
    pub home: PathBuf,
    /// The session cwd; project layers run from the project root down to it.
    pub cwd: PathBuf,
}

/// Which layer a handler came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookSource {
    System,
    User,
    Project,
}

impl HookSource {
    /// Managed layers are always trusted and enabled.
    pub fn is_managed(self) -> bool {
        self == HookSource::System
    }
}

/// A problem in one file; the message names the file and the field.
#[derive(Debug, Clone, PartialEq)]
pub struct HookWarning {
    pub path: PathBuf,
    /// `<path>: <detail>`, as `hooks/list` `warnings` and `configWarning` show it.
    pub message: String,
    /// The problem without the file, e.g. "field `hooks.Stop[0].hooks` must be an array".
    pub detail: String,
    /// Whether something failed to load (a `hooks/list` error), rather than a notice such as
    /// one layer declaring hooks in both hooks.json and config.toml.
    pub is_error: bool,
}

impl HookWarning {
    fn error(path: &Path, detail: String) -> Self {
        Self {
            message: format!("{}: {detail}", path.display()),
            path: path.to_path_buf(),
            detail,
            is_error: true,
        }
    }
}

/// One handler as `hooks/list` shows it and the runner needs it.
#[derive(Debug, Clone)]
pub struct DiscoveredHook {
    /// `<sourcePath>:<event_snake>:<groupIndex>:<handlerIndex>`.
    pub key: String,
    pub event: HookEvent,
    /// The effective matcher (`None` when absent or ignored for the event).
    pub matcher: Option<String>,
    matcher_compiled: Matcher,
    pub handler: CommandHandler,
    pub source_path: PathBuf,
    pub source: HookSource,
    /// One counter across all sources, in discovery order.
    pub display_order: i64,
    pub current_hash: String,
    pub trust_status: TrustStatus,
    pub enabled: bool,
}

impl DiscoveredHook {
    /// Whether the handler may run now: enabled, and managed or trusted at its current hash.
    pub fn runnable(&self) -> bool {
        self.enabled
            && matches!(
                self.trust_status,
                TrustStatus::Managed | TrustStatus::Trusted
            )
    }

    /// Whether the group's matcher selects any of `subjects` (a canonical name and its aliases).
    pub fn selects(&self, subjects: &[&str]) -> bool {
        self.matcher_compiled.matches_any(subjects)
    }
}

/// Everything discovered for one cwd.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub hooks: Vec<DiscoveredHook>,
    pub warnings: Vec<HookWarning>,
}

impl Discovery {
    /// The sync handlers of `event` that may run and whose matcher selects one of `subjects`.
    pub fn runnable_for<'a>(
        &'a self,
        event: HookEvent,
        subjects: &'a [&'a str],
    ) -> impl Iterator<Item = &'a DiscoveredHook> + 'a {
        self.selected(event, subjects)
            .filter(|h| !h.handler.is_async)
    }

    /// The `async: true` handlers of `event` that may run and whose matcher selects `subjects`.
    pub fn runnable_async_for<'a>(
        &'a self,
        event: HookEvent,
        subjects: &'a [&'a str],
    ) -> impl Iterator<Item = &'a DiscoveredHook> + 'a {
        self.selected(event, subjects)
            .filter(|h| h.handler.is_async)
    }

    fn selected<'a>(
        &'a self,
        event: HookEvent,
        subjects: &'a [&'a str],
    ) -> impl Iterator<Item = &'a DiscoveredHook> + 'a {
        self.hooks
            .iter()
            .filter(move |h| h.event == event && h.runnable() && h.selects(subjects))
    }

    /// The problems that kept something from loading, for `hooks/list` `errors`.
    pub fn errors(&self) -> impl Iterator<Item = &HookWarning> {
        self.warnings.iter().filter(|w| w.is_error)
    }
}

/// Discovers every layer's hooks for `roots`: per layer hooks.json, then config.toml `[hooks]`.
/// A missing file is skipped silently and a bad one becomes a warning while the rest still loads.
pub fn discover(roots: &DiscoveryRoots) -> Discovery {
    let mut out = Discovery::default();
    let user_config = roots.home.join("config.toml");
    let mut layers = Vec::new();
    if let Some(dir) = &roots.system_dir {
        layers.push((dir.to_path_buf(), HookSource::System));
    }
    layers.push((roots.home.clone(), HookSource::User));
    for dir in project_dirs(&roots.cwd) {
        layers.push((dir.join(".codex"), HookSource::Project));
    }
    // hooks.state is read only from the user's config.toml, so a project cannot trust its own
    // hooks (and a system file needs no trust).
    let states = match read_optional(&user_config, &mut out.warnings) {
        Some(text) => match toml::from_str::<toml::Table>(&text) {
            Ok(table) => {
                let (states, warning) = HookStates::from_table(&table);
                if let Some(detail) = warning {
                    out.warnings.push(HookWarning::error(&user_config, detail));
                }
                states
            }
            // Reported with the layer below, where the same text is parsed for hooks.
            Err(_) => HookStates::default(),
        },
        None => HookStates::default(),
    };
    let mut order = 0i64;
    for (dir, source) in layers {
        let json_path = dir.join("hooks.json");
        let toml_path = dir.join("config.toml");
        let json = read_optional(&json_path, &mut out.warnings).map(|t| parse_hooks_json(&t));
        let toml =
            read_optional(&toml_path, &mut out.warnings).and_then(|text| {
                match toml::from_str::<toml::Table>(&text) {
                    Ok(table) => parse_hooks_toml(&table),
                    Err(e) => Some((Vec::new(), vec![format!("invalid TOML: {e}")])),
                }
            });
        if let (Some((j, _)), Some((t, _))) = (&json, &toml) {
            if !j.is_empty() && !t.is_empty() {
                // Codex loads both and says so; it is a notice, not a load error.
                let detail = format!(
                    "loading hooks from both {} and {}; prefer a single representation for this layer",
                    json_path.display(),
                    toml_path.display()
                );
                out.warnings.push(HookWarning {
                    path: toml_path.clone(),
                    message: detail.clone(),
                    detail,
                    is_error: false,
                });
            }
        }
        for (path, parsed) in [(json_path, json), (toml_path, toml)] {
            if let Some(parsed) = parsed {
                add_file(&mut out, &mut order, &states, &path, source, parsed);
            }
        }
    }
    out
}

/// Reads a file that may be absent; an unreadable one becomes a warning.
fn read_optional(path: &Path, warnings: &mut Vec<HookWarning>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            warnings.push(HookWarning::error(path, format!("cannot read: {e}")));
            None
        }
    }
}

/// Adds one file's handlers (and warnings), numbering them on from `order`.
fn add_file(
    out: &mut Discovery,
    order: &mut i64,
    states: &HookStates,
    path: &Path,
    source: HookSource,
    (parsed, warnings): Parsed,
) {
    out.warnings.extend(
        warnings
            .into_iter()
            .map(|detail| HookWarning::error(path, detail)),
    );
    for p in parsed {
        let key = format!(
            "{}:{}:{}:{}",
            path.display(),
            p.event.snake(),
            p.group_index,
            p.handler_index
        );
        let hash = current_hash(p.event, p.matcher.as_deref(), &p.handler);
        let managed = source.is_managed();
        out.hooks.push(DiscoveredHook {
            trust_status: states.status(&key, &hash, managed),
            enabled: states.enabled(&key, managed),
            key,
            event: p.event,
            matcher: p.matcher,
            matcher_compiled: p.compiled,
            handler: p.handler,
            source_path: path.to_path_buf(),
            source,
            display_order: *order,
            current_hash: hash,
        });
        *order += 1;
    }
}

/// The directories whose `.codex/` is a project layer: from the nearest ancestor holding `.git`
/// down to `cwd`; only `cwd` when there is no such ancestor.
fn project_dirs(cwd: &Path) -> Vec<PathBuf> {
    let root = cwd
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(cwd);
    let mut dirs: Vec<PathBuf> = cwd
        .ancestors()
        .take_while(|d| d.starts_with(root))
        .map(Path::to_path_buf)
        .collect();
    dirs.reverse();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"hooks":{"Stop":[{"hooks":[{"type":"command","command":"true"}]}]}}"#;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn layers_are_classified_and_ordered_system_user_project_root_to_cwd() {
        let t = tempfile::tempdir().unwrap();
        let (sys, home, repo) = (
            t.path().join("etc"),
            t.path().join("home"),
            t.path().join("repo"),
        );
        let cwd = repo.join("sub");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        write(&sys.join("hooks.json"), ONE);
        write(&home.join("hooks.json"), ONE);
        write(&repo.join(".codex/hooks.json"), ONE);
        write(&cwd.join(".codex/hooks.json"), ONE);
        // Above the project root: not a layer.
        write(&t.path().join(".codex/hooks.json"), ONE);
        let d = discover(&DiscoveryRoots {
            system_dir: Some(sys.clone()),
            home: home.clone(),
            cwd: cwd.clone(),
        });
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        let got: Vec<_> = d
            .hooks
            .iter()
            .map(|h| (h.source, h.source_path.clone(), h.display_order))
            .collect();
        assert_eq!(
            got,
            vec![
                (HookSource::System, sys.join("hooks.json"), 0),
                (HookSource::User, home.join("hooks.json"), 1),
                (HookSource::Project, repo.join(".codex/hooks.json"), 2),
                (HookSource::Project, cwd.join(".codex/hooks.json"), 3),
            ]
        );
        assert_eq!(
            d.hooks[1].key,
            format!("{}:stop:0:0", home.join("hooks.json").display())
        );
        assert_eq!(d.hooks[0].trust_status, TrustStatus::Managed);
        assert!(d.hooks[0].runnable());
        assert_eq!(d.hooks[1].trust_status, TrustStatus::Untrusted);
        assert!(!d.hooks[1].runnable());
    }

    #[test]
    fn a_malformed_layer_warns_and_the_others_still_load() {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        let cwd = t.path().join("proj");
        write(&home.join("hooks.json"), r#"{"hooks": {"Stop": "oops"}}"#);
        write(&cwd.join(".codex/hooks.json"), ONE);
        let d = discover(&DiscoveryRoots {
            system_dir: None,
            home: home.clone(),
            cwd,
        });
        assert_eq!(d.hooks.len(), 1);
        assert_eq!(d.hooks[0].source, HookSource::Project);
        assert_eq!(d.warnings.len(), 1);
        assert_eq!(d.warnings[0].path, home.join("hooks.json"));
        assert!(d.warnings[0]
            .message
            .contains("`hooks.Stop` must be an array"));
    }

    #[test]
    fn trust_applies_to_the_hash_and_an_edit_untrusts() {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        let roots = DiscoveryRoots {
            system_dir: None,
            home: home.clone(),
            cwd: t.path().join("p"),
        };
        write(&home.join("hooks.json"), ONE);
        let first = discover(&roots).hooks.remove(0);
        write(
            &home.join("config.toml"),
            &format!(
                "[hooks.state.\"{}\"]\ntrusted_hash = \"{}\"\n",
                first.key, first.current_hash
            ),
        );
        assert_eq!(discover(&roots).hooks[0].trust_status, TrustStatus::Trusted);
        write(&home.join("hooks.json"), &ONE.replace("true", "false"));
        let edited = discover(&roots).hooks.remove(0);
        assert_eq!(edited.key, first.key);
        assert_eq!(edited.trust_status, TrustStatus::Modified);
        assert!(!edited.runnable());
    }

    const TOML_STOP: &str =
        "[[hooks.Stop]]\n[[hooks.Stop.hooks]]\ntype = \"command\"\ncommand = \"true\"\n";

    #[test]
    fn config_toml_hooks_load_per_layer_after_hooks_json_with_their_own_keys_and_trust() {
        let t = tempfile::tempdir().unwrap();
        let (sys, home, repo) = (
            t.path().join("etc"),
            t.path().join("home"),
            t.path().join("repo"),
        );
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        write(&sys.join("config.toml"), TOML_STOP);
        write(&home.join("hooks.json"), ONE);
        write(
            &home.join("config.toml"),
            &format!("model = \"m\"\n{TOML_STOP}"),
        );
        write(&repo.join(".codex/config.toml"), TOML_STOP);
        let roots = DiscoveryRoots {
            system_dir: Some(sys.clone()),
            home: home.clone(),
            cwd: repo.clone(),
        };
        let d = discover(&roots);
        let got: Vec<_> = d
            .hooks
            .iter()
            .map(|h| (h.source, h.source_path.clone(), h.display_order))
            .collect();
        assert_eq!(
            got,
            vec![
                (HookSource::System, sys.join("config.toml"), 0),
                (HookSource::User, home.join("hooks.json"), 1),
                (HookSource::User, home.join("config.toml"), 2),
                (HookSource::Project, repo.join(".codex/config.toml"), 3),
            ]
        );
        assert_eq!(d.hooks[0].trust_status, TrustStatus::Managed);
        assert_eq!(
            d.hooks[2].key,
            format!("{}:stop:0:0", home.join("config.toml").display())
        );
        // Same content, same hash, whichever file it came from.
        assert_eq!(d.hooks[1].current_hash, d.hooks[2].current_hash);
        // Both representations in one layer: a notice, not an error.
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        assert!(!d.warnings[0].is_error);
        assert!(d.warnings[0].message.contains("loading hooks from both"));
        assert_eq!(d.errors().count(), 0);

        // Trusting the TOML handler (in the same file that declares it) makes it runnable.
        let key = d.hooks[2].key.clone();
        let hash = d.hooks[2].current_hash.clone();
        write(
            &home.join("config.toml"),
            &format!("{TOML_STOP}[hooks.state.\"{key}\"]\ntrusted_hash = \"{hash}\"\n"),
        );
        let d = discover(&roots);
        let user_toml = d.hooks.iter().find(|h| h.key == key).expect("still listed");
        assert_eq!(user_toml.trust_status, TrustStatus::Trusted);
        assert!(user_toml.runnable());
    }

    #[test]
    fn a_project_cannot_trust_its_own_toml_hooks_and_bad_toml_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        let cwd = t.path().join("p");
        let project = cwd.join(".codex/config.toml");
        let key = format!("{}:stop:0:0", project.display());
        write(
            &project,
            &format!("{TOML_STOP}[hooks.state.\"{key}\"]\ntrusted_hash = \"sha256:x\"\n"),
        );
        write(&home.join("config.toml"), "model = \n");
        let d = discover(&DiscoveryRoots {
            system_dir: None,
            home: home.clone(),
            cwd,
        });
        assert_eq!(d.hooks.len(), 1);
        assert_eq!(d.hooks[0].trust_status, TrustStatus::Untrusted);
        let errors: Vec<_> = d.errors().collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, home.join("config.toml"));
        assert!(errors[0].detail.starts_with("invalid TOML"), "{errors:?}");
    }
}
