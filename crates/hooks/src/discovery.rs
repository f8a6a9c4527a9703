//! Finds hooks.json by layer (system, user, project) and decides, per handler, its key, hash,
//! trust status and display order.

use crate::event::HookEvent;
use crate::matcher::Matcher;
use crate::parse::{parse_hooks_json, CommandHandler};
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
    pub message: String,
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
        self.hooks.iter().filter(move |h| {
            h.event == event && !h.handler.is_async && h.runnable() && h.selects(subjects)
        })
    }
}

/// Discovers every layer's hooks.json for `roots`; a missing file is skipped silently and a bad
/// one becomes a warning while the other layers still load.
pub fn discover(roots: &DiscoveryRoots) -> Discovery {
    let mut out = Discovery::default();
    let config_path = roots.home.join("config.toml");
    let states = match std::fs::read_to_string(&config_path) {
        Ok(text) => {
            let (states, warning) = HookStates::from_config_toml(&text);
            if let Some(message) = warning {
                out.warnings.push(HookWarning {
                    message: format!("{}: {message}", config_path.display()),
                    path: config_path,
                });
            }
            states
        }
        Err(_) => HookStates::default(),
    };
    let mut layers = Vec::new();
    if let Some(dir) = &roots.system_dir {
        layers.push((dir.join("hooks.json"), HookSource::System));
    }
    layers.push((roots.home.join("hooks.json"), HookSource::User));
    for dir in project_dirs(&roots.cwd) {
        layers.push((dir.join(".codex").join("hooks.json"), HookSource::Project));
    }
    let mut order = 0i64;
    for (path, source) in layers {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.warnings.push(HookWarning {
                    message: format!("{}: cannot read: {e}", path.display()),
                    path,
                });
                continue;
            }
        };
        let (parsed, warnings) = parse_hooks_json(&path, &text);
        out.warnings
            .extend(warnings.into_iter().map(|message| HookWarning {
                path: path.clone(),
                message,
            }));
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
                source_path: path.clone(),
                source,
                display_order: order,
                current_hash: hash,
            });
            order += 1;
        }
    }
    out
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
}
