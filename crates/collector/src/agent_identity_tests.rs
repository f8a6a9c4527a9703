use super::*;
use ed25519_dalek::{Signer, SigningKey};
use futures::executor::block_on;
use std::time::UNIX_EPOCH;

use crate::config::CollectorConfig;
use crate::identity_backend::open_backend;

const T0: u64 = 1_795_990_810; // 2026-11-29T22:20:10Z

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn ts(secs: u64) -> String {
    humantime::format_rfc3339_seconds(at(secs)).to_string()
}

fn ssh_key(key: &SigningKey) -> String {
    format_ssh_ed25519(&key.verifying_key())
}

fn sign(key: &SigningKey, message: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.sign(message.as_bytes()).to_bytes())
}

/// The timestamp and signature `runtime` registers a task with at `secs`, signed by `key`.
fn task_proof(key: &SigningKey, runtime: &str, secs: u64) -> (String, String) {
    let timestamp = ts(secs);
    let signature = sign(key, &format!("{runtime}:{timestamp}"));
    (timestamp, signature)
}

fn encode(value: serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The header a real Codex builds: sorted keys, compact JSON, base64url without padding.
fn assertion(key: &SigningKey, runtime: &str, task: &str, secs: u64) -> String {
    let timestamp = ts(secs);
    let signature = sign(key, &format!("{runtime}:{task}:{timestamp}"));
    encode(serde_json::json!({
        "agent_runtime_id": runtime, "signature": signature, "task_id": task, "timestamp": timestamp,
    }))
}

struct Fixture {
    registry: IdentityRegistry,
    key: SigningKey,
    runtime: String,
    task: String,
}

fn fixture() -> Fixture {
    let registry = IdentityRegistry::new(AgentIdentityServerConfig::default());
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let runtime = block_on(registry.register_runtime("team-a", &ssh_key(&key), "codex-app"))
        .unwrap_or_default();
    let (timestamp, signature) = task_proof(&key, &runtime, T0);
    let task = block_on(registry.register_task(&runtime, &timestamp, &signature, at(T0)))
        .unwrap_or_default();
    Fixture {
        registry,
        key,
        runtime,
        task,
    }
}

#[test]
fn a_codex_shaped_assertion_verifies_and_exact_repeats_are_accepted_and_counted() {
    let f = fixture();
    assert!(f.runtime.starts_with("rt_") && f.task.starts_with("task_"));
    let header = assertion(&f.key, &f.runtime, &f.task, T0);
    let agent = f.registry.verify(&header, at(T0 + 1));
    assert_eq!(
        agent,
        Ok(VerifiedAgent {
            agent_runtime_id: f.runtime.clone(),
            task_id: f.task.clone(),
            account: "team-a".into(),
        })
    );
    assert!(f.registry.verify(&header, at(T0 + 1)).is_ok());
    assert_eq!(f.registry.repeats(), 1);
    assert!(f
        .registry
        .render_metrics()
        .contains("tally_collector_agent_assertion_repeats_total 1\n"));
}

fn rejected(f: &Fixture, header: &str, now: u64, reason: Rejection) {
    assert_eq!(f.registry.verify(header, at(now)), Err(reason));
    assert_eq!(f.registry.rejected(reason), 1, "{reason:?} counted");
}

#[test]
fn expired_assertion_is_rejected() {
    let f = fixture();
    rejected(
        &f,
        &assertion(&f.key, &f.runtime, &f.task, T0),
        T0 + 121,
        Rejection::Expired,
    );
}

#[test]
fn future_dated_assertion_is_rejected() {
    let f = fixture();
    rejected(
        &f,
        &assertion(&f.key, &f.runtime, &f.task, T0 + 121),
        T0,
        Rejection::FutureDated,
    );
}

#[test]
fn window_is_configurable() {
    let mut f = fixture();
    f.registry.config.window_seconds = 5;
    rejected(
        &f,
        &assertion(&f.key, &f.runtime, &f.task, T0),
        T0 + 6,
        Rejection::Expired,
    );
}

#[test]
fn a_window_past_what_a_clock_holds_verifies_instead_of_panicking() {
    // `at + window` and `window * 2` panicked on overflow: every signed request took the
    // handler down.
    let mut f = fixture();
    f.registry.config.window_seconds = u64::MAX;
    let header = assertion(&f.key, &f.runtime, &f.task, T0);
    assert!(f.registry.verify(&header, at(T0 + 1)).is_ok());
    assert!(f.registry.verify(&header, at(T0 + 2)).is_ok());
    assert_eq!(f.registry.repeats(), 1);
    let (timestamp, signature) = task_proof(&f.key, &f.runtime, T0);
    let task = block_on(
        f.registry
            .register_task(&f.runtime, &timestamp, &signature, at(T0)),
    );
    assert!(task.is_ok(), "{task:?}");
}

#[test]
fn assertion_signed_with_another_key_is_rejected() {
    let f = fixture();
    let other = SigningKey::from_bytes(&[3u8; 32]);
    rejected(
        &f,
        &assertion(&other, &f.runtime, &f.task, T0),
        T0,
        Rejection::BadSignature,
    );
}

#[test]
fn unknown_runtime_is_rejected() {
    let f = fixture();
    rejected(
        &f,
        &assertion(&f.key, "rt_nobody", &f.task, T0),
        T0,
        Rejection::UnknownRuntime,
    );
}

#[test]
fn unknown_task_is_rejected() {
    let f = fixture();
    rejected(
        &f,
        &assertion(&f.key, &f.runtime, "task_nobody", T0),
        T0,
        Rejection::UnknownTask,
    );
}

#[test]
fn a_forgotten_task_is_rejected_at_once_and_its_runtime_stays() {
    let f = fixture();
    let header = assertion(&f.key, &f.runtime, &f.task, T0);
    assert!(f.registry.verify(&header, at(T0)).is_ok());
    let forget = |runtime: &str| block_on(f.registry.forget_task(runtime, &f.task));
    assert_eq!(forget(&f.runtime), Ok(true));
    assert_eq!(forget(&f.runtime), Ok(false));
    assert_eq!(forget("rt_nobody"), Ok(false));
    rejected(&f, &header, T0, Rejection::UnknownTask);
    assert!(f.registry.list().iter().all(|r| !r.revoked && r.tasks == 0));
}

#[test]
fn revoked_runtime_is_rejected_at_once() {
    let f = fixture();
    let header = assertion(&f.key, &f.runtime, &f.task, T0);
    assert!(f.registry.verify(&header, at(T0)).is_ok());
    assert_eq!(block_on(f.registry.revoke(&f.runtime)), Ok(true));
    rejected(&f, &header, T0, Rejection::Revoked);
    assert!(f.registry.list().iter().all(|r| r.revoked));
}

#[test]
fn bad_base64_is_rejected() {
    let f = fixture();
    rejected(&f, "not*base64!", T0, Rejection::BadBase64);
}

#[test]
fn bad_json_is_rejected() {
    let f = fixture();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("{not json");
    rejected(&f, &header, T0, Rejection::BadJson);
}

#[test]
fn missing_field_is_rejected() {
    let f = fixture();
    let header = encode(serde_json::json!({
        "agent_runtime_id": f.runtime, "task_id": f.task, "timestamp": ts(T0),
    }));
    rejected(&f, &header, T0, Rejection::MissingField);
}

#[test]
fn bad_timestamp_is_rejected() {
    let f = fixture();
    let header = encode(serde_json::json!({
        "agent_runtime_id": f.runtime, "signature": "x", "task_id": f.task, "timestamp": "yesterday",
    }));
    rejected(&f, &header, T0, Rejection::BadTimestamp);
}

#[test]
fn runtime_over_its_rate_limit_is_rejected() {
    let mut f = fixture();
    f.registry.config.max_requests_per_minute = 2;
    let header = assertion(&f.key, &f.runtime, &f.task, T0);
    assert!(f.registry.verify(&header, at(T0)).is_ok());
    assert!(f.registry.verify(&header, at(T0)).is_ok());
    rejected(&f, &header, T0, Rejection::RateLimited);
}

#[test]
fn task_registration_checks_the_runtime_signature() {
    let f = fixture();
    let other = SigningKey::from_bytes(&[4u8; 32]);
    let (timestamp, wrong) = task_proof(&other, &f.runtime, T0);
    assert_eq!(
        block_on(
            f.registry
                .register_task(&f.runtime, &timestamp, &wrong, at(T0))
        ),
        Err(RegistryError::Rejected(Rejection::BadSignature))
    );
    let (_, right) = task_proof(&f.key, &f.runtime, T0);
    assert_eq!(
        block_on(
            f.registry
                .register_task("rt_nobody", &timestamp, &right, at(T0))
        ),
        Err(RegistryError::Rejected(Rejection::UnknownRuntime))
    );
    assert_eq!(
        block_on(
            f.registry
                .register_task(&f.runtime, &timestamp, &right, at(T0 + 600))
        ),
        Err(RegistryError::Rejected(Rejection::Expired))
    );
}

#[test]
fn non_ssh_public_keys_are_refused() {
    let registry = IdentityRegistry::new(AgentIdentityServerConfig::default());
    for key in ["ssh-rsa AAAA", "ssh-ed25519 !!!"] {
        let registered = block_on(registry.register_runtime("a", key, "x"));
        assert_eq!(registered, Err(RegistryError::BadKey));
    }
    let key = SigningKey::from_bytes(&[1u8; 32]).verifying_key();
    assert_eq!(parse_ssh_ed25519(&format_ssh_ed25519(&key)), Some(key));
}

#[test]
fn every_rejection_is_a_401_with_its_code_but_the_rate_limit_is_a_429() {
    let registry = IdentityRegistry::new(AgentIdentityServerConfig::default());
    for r in Rejection::ALL {
        let e = crate::auth::AuthError::agent(r, &registry);
        let expected = if r == Rejection::RateLimited {
            axum::http::StatusCode::TOO_MANY_REQUESTS
        } else {
            axum::http::StatusCode::UNAUTHORIZED
        };
        assert_eq!(e.status(), expected, "{r:?}");
        assert_eq!(e.code(), r.code());
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn the_rate_limit_refills_evenly_and_retry_after_is_the_time_of_one_token() {
    let mut f = fixture();
    f.registry.config.max_requests_per_minute = 2;
    assert_eq!(f.registry.retry_after_seconds(), 30);
    let header = assertion(&f.key, &f.runtime, &f.task, T0);
    assert!(f.registry.verify(&header, at(T0)).is_ok());
    assert!(f.registry.verify(&header, at(T0)).is_ok());
    assert_eq!(
        f.registry.verify(&header, at(T0 + 29)),
        Err(Rejection::RateLimited)
    );
    // One token back after 30 s, not two.
    assert!(f.registry.verify(&header, at(T0 + 30)).is_ok());
    assert_eq!(
        f.registry.verify(&header, at(T0 + 30)),
        Err(Rejection::RateLimited)
    );
    assert_eq!(f.registry.rejected(Rejection::RateLimited), 2);
    f.registry.config.max_requests_per_minute = 600;
    assert_eq!(f.registry.retry_after_seconds(), 1);
}

#[test]
fn bad_signatures_do_not_spend_a_runtime_budget() {
    let mut f = fixture();
    f.registry.config.max_requests_per_minute = 1;
    let forged = assertion(&SigningKey::from_bytes(&[3u8; 32]), &f.runtime, &f.task, T0);
    for _ in 0..5 {
        assert_eq!(
            f.registry.verify(&forged, at(T0 + 60)),
            Err(Rejection::BadSignature)
        );
    }
    let header = assertion(&f.key, &f.runtime, &f.task, T0 + 60);
    assert!(f.registry.verify(&header, at(T0 + 60)).is_ok());
}

#[test]
fn task_registrations_spend_the_runtime_budget() {
    let mut f = fixture();
    f.registry.config.max_requests_per_minute = 1;
    let (timestamp, signature) = task_proof(&f.key, &f.runtime, T0 + 60);
    let register = || {
        block_on(
            f.registry
                .register_task(&f.runtime, &timestamp, &signature, at(T0 + 60)),
        )
    };
    assert!(register().is_ok());
    assert_eq!(
        register(),
        Err(RegistryError::Rejected(Rejection::RateLimited))
    );
}

#[test]
fn a_sealed_task_id_opens_with_the_x25519_form_of_the_runtime_key() {
    let f = fixture();
    let sealed = f
        .registry
        .seal_task_id(&f.runtime, &f.task)
        .unwrap_or_default();
    assert_eq!(sealed.len() % 4, 0, "padded standard base64: {sealed}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&sealed)
        .unwrap_or_default();
    // Ed25519 seed -> SHA-512, first half (crypto_box clamps it) -> X25519 secret.
    let secret = crypto_box::SecretKey::from(f.key.to_scalar_bytes());
    let opened = secret.unseal(&bytes).unwrap_or_default();
    assert_eq!(String::from_utf8(opened).unwrap_or_default(), f.task);
    // Each seal uses a fresh ephemeral key.
    assert_ne!(f.registry.seal_task_id(&f.runtime, &f.task), Some(sealed));
    assert_eq!(f.registry.seal_task_id("rt_nobody", &f.task), None);
}

/// A registry kept in the SQLite database at `path`, as a collector (or `tally collector
/// identities`) opens it.
fn open_db(path: &std::path::Path) -> Result<IdentityRegistry, String> {
    let (backend, stored) = open_backend(&CollectorConfig::embedded(path))?;
    IdentityRegistry::with_backend(AgentIdentityServerConfig::default(), backend, stored)
}

#[test]
fn registry_survives_a_restart_and_sees_a_revocation_made_by_another_process() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("collector.sqlite3");
    let open = || open_db(&path).unwrap_or_else(|e| panic!("{e}"));
    let running = open();
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let runtime =
        block_on(running.register_runtime("team-a", &ssh_key(&key), "tally")).unwrap_or_default();
    let (timestamp, signature) = task_proof(&key, &runtime, T0);
    let task = block_on(running.register_task(&runtime, &timestamp, &signature, at(T0)))
        .unwrap_or_default();

    // A restart keeps runtime and task.
    let restarted = open();
    let header = assertion(&key, &runtime, &task, T0);
    assert!(restarted.verify(&header, at(T0)).is_ok());

    // `tally collector identities revoke` in another process: the running one sees it when it
    // next polls.
    assert_eq!(block_on(open().revoke(&runtime)), Ok(true));
    assert!(restarted.verify(&header, at(T0)).is_ok(), "not polled yet");
    assert_eq!(block_on(restarted.poll()), Ok(()));
    assert_eq!(restarted.verify(&header, at(T0)), Err(Rejection::Revoked));
    assert!(open().list().iter().all(|r| r.revoked && r.tasks == 1));
}

#[test]
fn a_task_forgotten_by_another_process_is_refused_after_the_next_poll() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("collector.sqlite3");
    let running = open_db(&path).unwrap_or_else(|e| panic!("{e}"));
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let runtime =
        block_on(running.register_runtime("team-a", &ssh_key(&key), "tally")).unwrap_or_default();
    let register = |secs| {
        let (timestamp, signature) = task_proof(&key, &runtime, secs);
        block_on(running.register_task(&runtime, &timestamp, &signature, at(secs)))
            .unwrap_or_default()
    };
    let (kept, forgotten) = (register(T0), register(T0 + 1));
    let other = open_db(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(block_on(other.forget_task(&runtime, &forgotten)), Ok(true));
    assert_eq!(block_on(running.poll()), Ok(()));
    let verify = |task: &str| running.verify(&assertion(&key, &runtime, task, T0), at(T0));
    assert_eq!(verify(&forgotten), Err(Rejection::UnknownTask));
    assert!(verify(&kept).is_ok());
    // Forgotten for good: a restart does not bring it back.
    let restarted = open_db(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(restarted.list()[0].tasks, 1);
}

#[test]
fn a_runtime_registered_by_another_collector_is_read_through_when_first_used() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("collector.sqlite3");
    let this = open_db(&path).unwrap_or_else(|e| panic!("{e}"));
    let other = open_db(&path).unwrap_or_else(|e| panic!("{e}"));
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let runtime =
        block_on(other.register_runtime("team-a", &ssh_key(&key), "codex")).unwrap_or_default();
    let (timestamp, signature) = task_proof(&key, &runtime, T0);
    // A task registration through this collector finds the runtime the other one registered.
    let first = block_on(this.register_task(&runtime, &timestamp, &signature, at(T0)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(this
        .verify(&assertion(&key, &runtime, &first, T0), at(T0))
        .is_ok());
    // An assertion with a task registered through the other one verifies once looked up.
    let second = block_on(other.register_task(&runtime, &timestamp, &signature, at(T0)))
        .unwrap_or_else(|e| panic!("{e}"));
    let header = assertion(&key, &runtime, &second, T0);
    assert_eq!(this.verify(&header, at(T0)), Err(Rejection::UnknownTask));
    block_on(this.look_up(&header));
    assert!(this.verify(&header, at(T0)).is_ok());
    // Both tasks are kept, whichever collector wrote last.
    let stored = open_db(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stored.list()[0].tasks, 2);
    // A made-up runtime is looked up once, then remembered as missing for a second.
    let made_up = format!("rt_{:032x}", 7);
    let stranger = assertion(&key, &made_up, "task_x", T0);
    block_on(this.look_up(&stranger));
    assert!(this.missed_recently(&made_up));
    assert_eq!(
        this.verify(&stranger, at(T0)),
        Err(Rejection::UnknownRuntime)
    );
}

/// A JSON registry as earlier versions wrote it beside the database: `key`'s runtime with two
/// tasks, and a revoked one.
fn legacy_registry(key: &SigningKey) -> serde_json::Value {
    let runtime = |id: &str, tasks: &[&str], revoked: bool| {
        serde_json::json!({
            "agent_runtime_id": id, "public_key": ssh_key(key), "account": "team-a",
            "harness": "codex", "tasks": tasks, "revoked": revoked,
        })
    };
    serde_json::json!({"runtimes": [
        runtime(&format!("rt_{:032x}", 1), &["task_a", "task_b"], false),
        runtime(&format!("rt_{:032x}", 2), &["task_c"], true),
    ]})
}

#[test]
fn a_legacy_json_registry_is_imported_once_and_renamed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("collector.sqlite3");
    let legacy = CollectorConfig::embedded(&path).legacy_identity_file();
    let imported = legacy.with_extension("json.imported");
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let text = legacy_registry(&key).to_string();
    std::fs::write(&legacy, &text).unwrap_or_else(|e| panic!("{e}"));

    let registry = open_db(&path).unwrap_or_else(|e| panic!("{e}"));
    let (live, revoked) = (format!("rt_{:032x}", 1), format!("rt_{:032x}", 2));
    let verify = |r: &IdentityRegistry, runtime: &str, task: &str| {
        r.verify(&assertion(&key, runtime, task, T0), at(T0))
    };
    assert!(verify(&registry, &live, "task_a").is_ok());
    assert!(verify(&registry, &live, "task_b").is_ok());
    assert_eq!(
        verify(&registry, &revoked, "task_c"),
        Err(Rejection::Revoked)
    );
    assert!(!legacy.exists(), "the JSON file was left in place");
    assert_eq!(std::fs::read_to_string(&imported).ok(), Some(text));

    // A crash before the rename leaves the file to be imported again at the next start: what
    // changed since stays changed.
    assert_eq!(block_on(registry.forget_task(&live, "task_a")), Ok(true));
    std::fs::rename(&imported, &legacy).unwrap_or_else(|e| panic!("{e}"));
    let restarted = open_db(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        verify(&restarted, &live, "task_a"),
        Err(Rejection::UnknownTask)
    );
    assert!(verify(&restarted, &live, "task_b").is_ok());
    assert_eq!(restarted.list().len(), 2);
    assert!(!legacy.exists() && imported.exists());
}

#[test]
fn a_corrupt_legacy_registry_stops_start_up_and_is_left_in_place() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("collector.sqlite3");
    let legacy = CollectorConfig::embedded(&path).legacy_identity_file();
    std::fs::write(&legacy, "{").unwrap_or_else(|e| panic!("{e}"));
    let error = open_db(&path).err().unwrap_or_default();
    assert!(
        error.contains(&legacy.display().to_string()),
        "error does not name the file: {error}"
    );
    assert!(legacy.exists());
    // A key that does not parse is refused the same way, naming the runtime.
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let mut registry = legacy_registry(&key);
    registry["runtimes"][1]["public_key"] = "ssh-ed25519 AAAA".into();
    std::fs::write(&legacy, registry.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let error = open_db(&path).err().unwrap_or_default();
    assert!(error.contains(&format!("rt_{:032x}", 2)), "{error}");
    // Nothing of it was imported.
    std::fs::remove_file(&legacy).unwrap_or_else(|e| panic!("{e}"));
    let empty = open_db(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(empty.list().is_empty());
}

/// A backend that counts the runtimes looked up in it and answers each look-up with `answer`
/// (keeping nothing).
#[derive(Default)]
struct CountingBackend {
    lookups: std::sync::atomic::AtomicUsize,
    answer: Option<StoredRuntime>,
}

impl IdentityBackend for CountingBackend {
    fn everything(&self) -> futures::future::BoxFuture<'_, Result<Vec<StoredRuntime>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn runtime<'a>(
        &'a self,
        _: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<StoredRuntime>, String>> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let answer = self.answer.clone();
        Box::pin(async { Ok(answer) })
    }

    fn changes(&self) -> futures::future::BoxFuture<'_, Result<Option<Withdrawals>, String>> {
        Box::pin(async { Ok(None) })
    }

    fn add_runtime<'a>(
        &'a self,
        _: &'a StoredRuntime,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn revoke<'a>(&'a self, _: &'a str) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn set_task<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: bool,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn describe(&self) -> String {
        "counting".into()
    }
}

/// A registry, empty, over `backend`.
fn counted(backend: &Arc<CountingBackend>) -> IdentityRegistry {
    IdentityRegistry::with_backend(
        AgentIdentityServerConfig::default(),
        backend.clone(),
        Vec::new(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn made_up_tasks_and_ids_cost_the_shared_registry_nothing() {
    let backend = Arc::new(CountingBackend::default());
    let registry = counted(&backend);
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let runtime =
        block_on(registry.register_runtime("team-a", &ssh_key(&key), "codex")).unwrap_or_default();
    let lookups = || backend.lookups.load(Ordering::Relaxed);

    // A known runtime with a task it never registered: only its own signature is looked up.
    let stranger = SigningKey::from_bytes(&[7u8; 32]);
    block_on(registry.look_up(&assertion(&stranger, &runtime, "task_made_up", T0)));
    assert_eq!(lookups(), 0, "a forged assertion reached the backend");
    block_on(registry.look_up(&assertion(&key, &runtime, "task_elsewhere", T0)));
    assert_eq!(lookups(), 1, "a signed one is looked up");

    // Ids of a shape this collector never makes are not looked up.
    for id in ["rt_made_up", "x", &"rt_0".repeat(40)] {
        block_on(registry.look_up(&assertion(&key, id, "task_x", T0)));
    }
    assert_eq!(lookups(), 1);
}

#[test]
fn a_flood_of_unknown_runtimes_is_looked_up_at_most_100_times_a_second() {
    // Headers signed first, and a registry whose second starts after that: the 150 lookups
    // below take milliseconds, well inside the registry's first second.
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let headers: Vec<String> = (0..150)
        .map(|i| assertion(&key, &format!("rt_{:032x}", i % 120), "task_x", T0))
        .collect();
    let backend = Arc::new(CountingBackend::default());
    let registry = counted(&backend);
    for header in &headers {
        block_on(registry.look_up(header));
    }
    // The first 100 ids looked up, the next 20 skipped, the 30 repeats remembered as missing.
    assert_eq!(backend.lookups.load(Ordering::Relaxed), 100);
    let metrics = registry.render_metrics();
    assert!(
        metrics.contains("tally_collector_agent_lookups_skipped_total 20\n"),
        "{metrics}"
    );
}

#[test]
fn a_look_up_that_read_a_runtime_before_its_revocation_does_not_undo_it() {
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let runtime = format!("rt_{:032x}", 1);
    // What the backend held when a look-up read it: not revoked yet, with a task memory lacks.
    let stale = StoredRuntime {
        agent_runtime_id: runtime.clone(),
        public_key: ssh_key(&key),
        account: "team-a".into(),
        harness: "codex".into(),
        tasks: vec!["task_a".into(), "task_b".into()],
        revoked: false,
    };
    let backend = Arc::new(CountingBackend {
        answer: Some(stale.clone()),
        ..CountingBackend::default()
    });
    let known = StoredRuntime {
        tasks: vec!["task_a".into()],
        ..stale
    };
    let registry = IdentityRegistry::with_backend(
        AgentIdentityServerConfig::default(),
        backend.clone(),
        vec![known],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(block_on(registry.revoke(&runtime)), Ok(true));
    let header = assertion(&key, &runtime, "task_b", T0);
    block_on(registry.look_up(&header));
    assert_eq!(backend.lookups.load(Ordering::Relaxed), 1);
    assert_eq!(registry.verify(&header, at(T0)), Err(Rejection::Revoked));
}

#[test]
fn registrations_past_their_limits_are_refused_and_revocation_frees_a_runtime_slot() {
    let registry = IdentityRegistry::new(AgentIdentityServerConfig {
        max_runtimes_per_account: 2,
        max_tasks_per_runtime: 2,
        ..AgentIdentityServerConfig::default()
    });
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let register =
        |account: &str| block_on(registry.register_runtime(account, &ssh_key(&key), "codex-app"));
    let first = register("team-a").unwrap_or_default();
    assert!(register("team-a").is_ok());
    let refused = register("team-a");
    assert!(
        matches!(
            refused,
            Err(RegistryError::Limit {
                code: "agent_runtime_limit",
                limit: 2,
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(register("team-b").is_ok(), "another account has its own");
    assert_eq!(block_on(registry.revoke(&first)), Ok(true));
    assert!(
        register("team-a").is_ok(),
        "a revoked runtime no longer counts"
    );

    let runtime = register("team-b").unwrap_or_default();
    for second in 0..3u64 {
        let (timestamp, signature) = task_proof(&key, &runtime, T0 + second);
        let task = block_on(registry.register_task(&runtime, &timestamp, &signature, at(T0)));
        if second < 2 {
            assert!(task.is_ok(), "{task:?}");
        } else {
            assert!(
                matches!(
                    task,
                    Err(RegistryError::Limit {
                        code: "agent_task_limit",
                        ..
                    })
                ),
                "{task:?}"
            );
        }
    }
}

#[test]
fn a_padded_copy_of_an_assertion_is_the_same_assertion_and_takes_no_more_memory() {
    let f = fixture();
    let timestamp = ts(T0);
    let signature = sign(&f.key, &format!("{}:{}:{timestamp}", f.runtime, f.task));
    let padded = |pad: usize| {
        encode(serde_json::json!({
            "agent_runtime_id": f.runtime, "signature": signature, "task_id": f.task,
            "timestamp": timestamp, "padding": "x".repeat(pad),
        }))
    };
    for pad in 0..20 {
        assert!(f.registry.verify(&padded(pad), at(T0)).is_ok());
    }
    assert_eq!(
        f.registry.repeats(),
        19,
        "every padded copy is a repeat of the first"
    );
    let remembered = f
        .registry
        .recent
        .lock()
        .map(|r| r.seen.len())
        .unwrap_or_default();
    assert_eq!(remembered, 1);
}
