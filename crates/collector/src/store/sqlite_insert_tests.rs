use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::BorrowingInsert;

fn table() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE t (a TEXT, b INTEGER, c BLOB UNIQUE, d REAL)")
        .unwrap();
    conn
}

#[test]
fn rows_hold_the_values_after_the_borrowed_text_is_gone() {
    let conn = table();
    let mut insert =
        BorrowingInsert::prepare(&conn, "INSERT INTO t VALUES (?1, ?2, ?3, ?4)").unwrap();
    for i in 0..3 {
        // Each value lives only for its own call; SQLite must have copied it into the row.
        let text = format!("text-{i}-é");
        let blob = vec![i as u8; 3];
        let values = [
            ValueRef::Text(text.as_bytes()),
            ValueRef::Integer(i),
            ValueRef::Blob(&blob),
            ValueRef::Real(0.5),
        ];
        assert_eq!(insert.execute(values).unwrap(), 1);
    }
    drop(insert);
    let rows: Vec<(String, i64, Vec<u8>, f64)> = conn
        .prepare("SELECT a, b, c, d FROM t ORDER BY b")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2], ("text-2-é".to_owned(), 2, vec![2, 2, 2], 0.5));
}

#[test]
fn missing_values_are_null_and_extra_ones_an_error() {
    let conn = table();
    let mut insert =
        BorrowingInsert::prepare(&conn, "INSERT INTO t (a, b) VALUES (?1, ?2)").unwrap();
    assert_eq!(insert.execute([ValueRef::Text(b"only a")]).unwrap(), 1);
    let b: Option<i64> = conn.query_row("SELECT b FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(b, None);
    let extra = [ValueRef::Null, ValueRef::Null, ValueRef::Null];
    assert!(insert.execute(extra).is_err());
    // The statement is usable after a failure.
    assert_eq!(insert.execute([ValueRef::Text(b"again")]).unwrap(), 1);
}

#[test]
fn a_constraint_failure_is_an_error_with_sqlite_s_message_and_leaves_the_statement_usable() {
    let conn = table();
    let mut insert = BorrowingInsert::prepare(&conn, "INSERT INTO t (c) VALUES (?1)").unwrap();
    insert.execute([ValueRef::Blob(b"k")]).unwrap();
    let error = insert.execute([ValueRef::Blob(b"k")]).unwrap_err();
    assert!(error.to_string().contains("UNIQUE"), "{error}");
    assert_eq!(insert.execute([ValueRef::Blob(b"other")]).unwrap(), 1);
}

#[test]
fn a_statement_that_does_not_prepare_is_an_error() {
    let conn = table();
    let error = BorrowingInsert::prepare(&conn, "INSERT INTO missing VALUES (?1)")
        .err()
        .expect("no such table");
    assert!(error.to_string().contains("missing"), "{error}");
    assert!(BorrowingInsert::prepare(&conn, "  ").is_err());
}
