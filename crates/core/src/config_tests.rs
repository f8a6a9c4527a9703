use super::*;

fn load(text: &str, has_key: bool) -> Result<Config, ConfigError> {
    let path = Path::new("/h/config.toml");
    let toml = parse_config_toml(path, text)?;
    Config::from_toml(Path::new("/h"), toml, path, has_key)
}

#[test]
fn empty_config_uses_offline_model_without_api_key_and_openai_with_one() {
    let c = load("", false).expect("loads");
    assert_eq!(c.model_provider.kind, ProviderKind::Offline);
    let c = load("", true).expect("loads");
    assert_eq!(c.model_provider.id, "openai");
}

#[test]
fn reads_codex_keys_unchanged() {
    let c = load(
        r#"
model = "gpt-test"
model_provider = "mock"
approval_policy = "never"
sandbox_mode = "read-only"
chatgpt_base_url = "http://127.0.0.1:9/backend-api"
some_future_key = 3

[model_providers.mock]
name = "Mock"
base_url = "http://127.0.0.1:1234/v1/"
wire_api = "responses"
request_max_retries = 2
stream_max_retries = 1

[analytics]
enabled = false
"#,
        false,
    )
    .expect("loads");
    assert_eq!(c.model, "gpt-test");
    assert_eq!(
        c.model_provider.kind,
        ProviderKind::Responses {
            base_url: "http://127.0.0.1:1234/v1".into(),
            env_key: None,
            requires_openai_auth: false,
        }
    );
    assert_eq!(c.model_provider.request_max_retries, 2);
    assert_eq!(c.sandbox_mode, SandboxMode::ReadOnly);
    assert_eq!(c.analytics_enabled, Some(false));
}

#[test]
fn wrong_type_names_file_key_and_expectation() {
    let err = load("[analytics]\nenabled = \"yes\"\n", false).expect_err("type error");
    let msg = err.to_string();
    assert!(msg.contains("/h/config.toml"), "{msg}");
    assert!(msg.contains("enabled"), "{msg}");
    assert!(msg.contains("bool"), "{msg}");
}

#[test]
fn unknown_provider_and_wrong_wire_api_are_named() {
    let err = load("model_provider = \"nope\"\n", false).expect_err("unknown provider");
    assert!(err.to_string().contains("model_provider"), "{err}");
    let err = load(
        "[model_providers.x]\nbase_url = \"http://a/v1\"\nwire_api = \"chat\"\n",
        false,
    )
    .expect_err("wire api");
    assert!(
        err.to_string().contains("model_providers.x.wire_api"),
        "{err}"
    );
}

#[test]
fn request_user_input_is_off_unless_codex_s_tools_key_enables_it() {
    assert!(!load("", false).expect("loads").request_user_input);
    let c = load(
        "[tools]\nweb_search = true\n\n[tools.experimental_request_user_input]\nenabled = true\n",
        false,
    )
    .expect("loads");
    assert!(c.request_user_input);
    let err = load(
        "[tools.experimental_request_user_input]\nenabled = \"on\"\n",
        false,
    )
    .expect_err("type error");
    assert!(err.to_string().contains("enabled"), "{err}");
}

#[test]
fn thread_idle_unload_defaults_to_thirty_minutes_and_zero_turns_it_off() {
    let c = load("", false).expect("loads");
    assert_eq!(
        c.thread_idle_unload,
        Some(std::time::Duration::from_secs(30 * 60))
    );
    let c = load("[app_server]\nthread_idle_unload_ms = 250\n", false).expect("loads");
    assert_eq!(
        c.thread_idle_unload,
        Some(std::time::Duration::from_millis(250))
    );
    let c = load("[app_server]\nthread_idle_unload_ms = 0\n", false).expect("loads");
    assert_eq!(c.thread_idle_unload, None);
    let err =
        load("[app_server]\nthread_idle_unload_ms = \"soon\"\n", false).expect_err("wrong type");
    assert!(err.to_string().contains("thread_idle_unload_ms"), "{err}");
}

#[test]
fn model_context_window_is_unknown_unless_set_and_must_be_positive() {
    assert_eq!(load("", false).expect("loads").model_context_window, None);
    let c = load("model_context_window = 272000\n", false).expect("loads");
    assert_eq!(c.model_context_window, Some(272_000));
    for bad in ["0", "-5", "\"big\""] {
        let err = load(&format!("model_context_window = {bad}\n"), false).expect_err(bad);
        assert!(err.to_string().contains("model_context_window"), "{err}");
    }
}

#[test]
fn analytics_destination_is_the_collector_when_named_else_the_file() {
    let both = load(
        "[analytics]\ncollector_url = \"https://c.example\"\njsonl_path = \"events.jsonl\"\n",
        false,
    )
    .expect("loads");
    assert_eq!(
        both.analytics.destination(),
        Some(AnalyticsDestination::Collector("https://c.example"))
    );
    let file = load("[analytics]\njsonl_path = \"events.jsonl\"\n", false).expect("loads");
    let to = file.analytics.destination().expect("a destination");
    assert_eq!(to, AnalyticsDestination::File(Path::new("/h/events.jsonl")));
    assert_eq!(to.to_string(), "/h/events.jsonl");
    let none = load("[analytics]\nenabled = true\n", false).expect("loads");
    assert_eq!(none.analytics.destination(), None);
}
