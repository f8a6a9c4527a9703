use super::*;

#[test]
fn a_runtime_is_looked_up_through_the_primary_keys_not_a_scan() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = SqliteConfig {
        path: dir.path().join("ids.sqlite3"),
        ..SqliteConfig::default()
    };
    let db = SqliteIdentities::open(&config).unwrap_or_else(|e| panic!("{e}"));
    let (tasks, runtimes) = read_sql(true);
    let plans = db
        .blocking(|conn| {
            [tasks, runtimes]
                .iter()
                .map(|sql| {
                    let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let rows = plan.query_map(["rt_1"], |r| r.get::<_, String>(3))?;
                    rows.collect::<Result<Vec<_>, _>>().map(|d| d.join("; "))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    for plan in plans {
        assert!(
            plan.starts_with("SEARCH") && plan.contains("PRIMARY KEY"),
            "{plan}"
        );
    }
}
