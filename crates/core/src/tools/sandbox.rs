//! Sandbox enforcement for commands: on Linux a Landlock ruleset, built in the parent and applied
//! in the child between fork and exec, restricts writes to the writable roots and (when the
//! policy forbids network) TCP bind/connect. Where the kernel lacks Landlock the caller falls back
//! to asking for approval.

use std::path::{Path, PathBuf};
use tally_protocol::types::SandboxPolicy;

/// What a sandboxed command may write, and whether it may use the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SandboxRules {
    /// Directories (and their subtrees) the command may write; empty means read-only.
    pub writable_roots: Vec<PathBuf>,
    pub network_access: bool,
}

impl SandboxRules {
    /// The rules a policy stands for in `cwd`; `None` when the policy asks for no sandbox.
    pub fn for_policy(policy: &SandboxPolicy, cwd: &Path) -> Option<Self> {
        match policy {
            SandboxPolicy::DangerFullAccess | SandboxPolicy::ExternalSandbox { .. } => None,
            SandboxPolicy::ReadOnly { network_access } => Some(Self {
                writable_roots: Vec::new(),
                network_access: *network_access,
            }),
            SandboxPolicy::WorkspaceWrite { .. } => Some(Self {
                writable_roots: writable_roots(policy, cwd),
                network_access: matches!(
                    policy,
                    SandboxPolicy::WorkspaceWrite {
                        network_access: true,
                        ..
                    }
                ),
            }),
        }
    }
}

/// The directories a policy lets the agent write: everything (`None`) or a list of roots.
pub(crate) fn writable_roots(policy: &SandboxPolicy, cwd: &Path) -> Vec<PathBuf> {
    let SandboxPolicy::WorkspaceWrite {
        writable_roots,
        exclude_tmpdir_env_var,
        exclude_slash_tmp,
        ..
    } = policy
    else {
        return Vec::new();
    };
    let mut roots = vec![cwd.to_path_buf()];
    roots.extend(writable_roots.iter().map(|r| cwd.join(r)));
    if !exclude_slash_tmp {
        roots.push(PathBuf::from("/tmp"));
    }
    if !exclude_tmpdir_env_var {
        if let Some(tmp) = std::env::var_os("TMPDIR").filter(|t| !t.is_empty()) {
            roots.push(PathBuf::from(tmp));
        }
    }
    roots
}

/// Whether `path` may be written under `policy` (files Tally itself writes, e.g. patches).
pub(crate) fn may_write(policy: &SandboxPolicy, cwd: &Path, path: &Path) -> bool {
    match policy {
        SandboxPolicy::DangerFullAccess | SandboxPolicy::ExternalSandbox { .. } => true,
        SandboxPolicy::ReadOnly { .. } => false,
        SandboxPolicy::WorkspaceWrite { .. } => {
            let path = resolve(&cwd.join(path));
            writable_roots(policy, cwd)
                .iter()
                .any(|root| path.starts_with(resolve(root)))
        }
    }
}

/// The real location of a path that may not exist yet: its deepest existing ancestor with
/// symlinks resolved, plus the rest, so a symlink in the workspace cannot point a write outside.
/// A path that is itself a symlink, even a dangling one, is where it points (a write follows it).
fn resolve(path: &Path) -> PathBuf {
    resolve_within(path, 0)
}

/// Links followed at most, as the kernel does (ELOOP past 40).
const MAX_LINKS: usize = 40;

fn resolve_within(path: &Path, links: usize) -> PathBuf {
    let path = normalize(path);
    if let (Ok(target), Some(parent), true) =
        (std::fs::read_link(&path), path.parent(), links < MAX_LINKS)
    {
        return resolve_within(&parent.join(target), links + 1);
    }
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |acc, part| acc.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return path,
        }
    }
}

/// Resolves `.` and `..` lexically (the file may not exist yet), so `a/../../etc` cannot escape.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Whether this kernel enforces Landlock; probed once.
pub fn landlock_available() -> bool {
    use std::sync::OnceLock;
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(imp::probe)
}

/// A ruleset ready to be applied to a child process.
pub(crate) use imp::PreparedSandbox;

#[cfg(target_os = "linux")]
mod imp {
    use super::SandboxRules;
    use landlock::{
        Access, AccessFs, AccessNet, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
        RulesetCreated, RulesetCreatedAttr, ABI,
    };

    /// The newest ABI Tally knows how to use; older kernels get the subset they support.
    const ABI_USED: ABI = ABI::V5;

    pub(super) fn probe() -> bool {
        // Creating a ruleset fails with ENOSYS/EOPNOTSUPP where Landlock is missing or disabled.
        let created = Ruleset::default()
            .set_compatibility(landlock::CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(ABI::V1))
            .and_then(|r| r.create());
        created.is_ok()
    }

    /// A created ruleset; `apply` runs in the forked child before exec.
    pub(crate) struct PreparedSandbox {
        ruleset: Option<RulesetCreated>,
    }

    impl PreparedSandbox {
        /// Builds the ruleset in the parent (opening the roots needs allocation, which the
        /// child must avoid between fork and exec).
        pub fn build(rules: &SandboxRules) -> Result<Self, String> {
            let read = AccessFs::from_read(ABI_USED);
            let all = AccessFs::from_all(ABI_USED);
            let mut ruleset = Ruleset::default()
                .handle_access(all)
                .map_err(|e| e.to_string())?;
            if !rules.network_access {
                ruleset = ruleset
                    .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
                    .map_err(|e| e.to_string())?;
            }
            let mut created = ruleset.create().map_err(|e| e.to_string())?;
            created = created
                .add_rule(PathBeneath::new(
                    PathFd::new("/").map_err(|e| e.to_string())?,
                    read,
                ))
                .map_err(|e| e.to_string())?;
            // Shells redirect to /dev/null even in read-only mode.
            if let Ok(fd) = PathFd::new("/dev/null") {
                created = created
                    .add_rule(PathBeneath::new(fd, AccessFs::from_file(ABI_USED)))
                    .map_err(|e| e.to_string())?;
            }
            for root in &rules.writable_roots {
                // A root that does not exist cannot be written anyway.
                if let Ok(fd) = PathFd::new(root) {
                    created = created
                        .add_rule(PathBeneath::new(fd, all))
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok(Self {
                ruleset: Some(created),
            })
        }

        /// Restricts the calling process; meant for `pre_exec`, so it does not allocate.
        pub fn apply(&mut self) -> std::io::Result<()> {
            let Some(ruleset) = self.ruleset.take() else {
                return Ok(());
            };
            match ruleset.restrict_self() {
                Ok(_) => Ok(()),
                Err(_) => Err(std::io::Error::from_raw_os_error(libc::EPERM)),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::SandboxRules;

    pub(super) fn probe() -> bool {
        false
    }

    /// No sandbox exists on this platform; `build` always fails.
    pub(crate) struct PreparedSandbox;

    impl PreparedSandbox {
        pub fn build(_rules: &SandboxRules) -> Result<Self, String> {
            Err("no sandbox on this platform".into())
        }

        pub fn apply(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}

#[cfg(test)]
#[path = "sandbox_tests.rs"]
mod tests;
