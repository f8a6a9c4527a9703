//! `tally login --api-key`, `login status`, `logout`, and `tally collector identities list|revoke`;
//! how one-shot commands end when nobody reads their output.

use std::process::{Command, Output};

fn tally(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("tally runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn login_status_and_logout_never_print_the_key() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = tally(home.path(), &["login", "--api-key", "sk-cli-secret"]);
    assert!(out.status.success(), "{out:?}");
    let status = tally(home.path(), &["login", "status"]);
    assert_eq!(stdout(&status).trim(), "Logged in with an API key");
    for o in [&out, &status] {
        assert!(!stdout(o).contains("sk-cli-secret"));
        assert!(!String::from_utf8_lossy(&o.stderr).contains("sk-cli-secret"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.path().join("auth.json"))
            .expect("auth.json")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = tally(home.path(), &["logout"]);
    assert_eq!(stdout(&out).trim(), "Logged out.");
    assert_eq!(
        stdout(&tally(home.path(), &["login", "status"])).trim(),
        "Not logged in"
    );
}

#[test]
fn collector_identities_list_and_revoke() {
    let home = tempfile::tempdir().expect("tempdir");
    let config =
        tally_collector::CollectorConfig::embedded(home.path().join("collector").join("tally.db"));
    let (backend, stored) =
        tally_collector::identity_backend::open_backend(&config).expect("backend");
    let registry = tally_collector::agent_identity::IdentityRegistry::with_backend(
        config.agent_identity.clone(),
        backend,
        stored,
    )
    .expect("registry");
    let keys = tempfile::tempdir().expect("tempdir");
    let signing = tally_auth::agent_identity::load_or_create_key(keys.path()).expect("key");
    let key = tally_auth::agent_identity::ssh_public_key(&signing.verifying_key().to_bytes());
    // The harness is the registering agent's own text: escapes must not reach the terminal.
    let harness = "tally\u{1b}[2J\u{202e}";
    let runtime = futures::executor::block_on(registry.register_runtime("team-a", &key, harness))
        .expect("registered");
    let list = stdout(&tally(
        home.path(),
        &["collector", "identities", "list", "--json"],
    ));
    let listed: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert_eq!(listed[0]["agent_runtime_id"], runtime.as_str());
    assert_eq!(listed[0]["revoked"], false);
    let out = tally(
        home.path(),
        &["collector", "identities", "revoke", &runtime],
    );
    assert!(out.status.success(), "{out:?}");
    let list = stdout(&tally(home.path(), &["collector", "identities", "list"]));
    assert!(
        list.contains(&runtime) && list.contains("revoked") && list.contains("tally?"),
        "{list}"
    );
    assert!(
        !list.contains('\u{1b}') && !list.contains('\u{202e}'),
        "{list:?}"
    );
    let missing = tally(
        home.path(),
        &["collector", "identities", "revoke", "rt_nobody"],
    );
    assert!(!missing.status.success());
}

/// `tally report | head -1`: a reader that stops early ends a one-shot command quietly (exit 0),
/// not with Rust's "failed printing to stdout" panic.
#[test]
fn one_shot_commands_end_quietly_when_their_reader_is_gone() {
    let home = tempfile::tempdir().expect("tempdir");
    let config =
        tally_collector::CollectorConfig::embedded(home.path().join("collector").join("tally.db"));
    tally_collector::identity_backend::open_backend(&config).expect("creates the database");
    for args in [
        &["report"][..],
        &["report", "--json"],
        &["login", "status"],
        &["analytics", "status"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_tally"))
            .arg("--home")
            .arg(home.path())
            .args(args)
            .env_remove("OPENAI_API_KEY")
            .stdout(writer)
            .output()
            .expect("tally runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
