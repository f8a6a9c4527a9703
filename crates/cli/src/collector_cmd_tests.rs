use super::*;

/// The SQLite file `config.toml` holding `text` gives, under a fresh home.
fn store_path(text: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    if let Some(text) = text {
        std::fs::write(home.path().join("config.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    }
    let config = collector_config(home.path()).unwrap_or_else(|e| panic!("{e}"));
    (home, config.sqlite.path)
}

#[test]
fn the_store_stays_under_the_home_whatever_the_collector_table_sets() {
    let (home, path) = store_path(None);
    assert_eq!(path, embedded_db_path(home.path()));
    // Setting anything else in [collector] does not move the store (it used to go to the
    // current directory as analytics.sqlite3).
    let (home, path) = store_path(Some("[collector]\nretention_days = 30\n"));
    assert_eq!(path, embedded_db_path(home.path()));
    let (home, path) = store_path(Some("[collector.sqlite]\nsynchronous = \"normal\"\n"));
    assert_eq!(path, embedded_db_path(home.path()));
    // A relative name is under the home; an absolute one is kept.
    let (home, path) = store_path(Some("[collector.sqlite]\npath = \"data/a.db\"\n"));
    assert_eq!(path, home.path().join("data/a.db"));
    let (_home, path) = store_path(Some("[collector.sqlite]\npath = \"/var/lib/t.db\"\n"));
    assert_eq!(path, PathBuf::from("/var/lib/t.db"));
}

#[tokio::test]
async fn a_report_on_a_home_without_a_database_says_so_and_creates_nothing() {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let error = run_report(home.path(), "7d", false, None)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let db = embedded_db_path(home.path());
    assert!(
        error.starts_with("no collector database at") && error.contains(&db.display().to_string()),
        "{error}"
    );
    assert!(
        !home.path().join("collector").exists(),
        "a directory was made"
    );
}

#[tokio::test]
async fn identities_on_a_home_without_a_database_say_so_and_create_nothing() {
    use crate::commands::IdentitiesCommand;
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let list = IdentitiesCommand::List { json: false };
    let error = identities(home.path(), list)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.starts_with("no collector database at"), "{error}");
    assert!(
        !home.path().join("collector").exists(),
        "a directory was made"
    );
}
