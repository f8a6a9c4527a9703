//! A prepared INSERT that binds text without copying it (`SQLITE_STATIC`). rusqlite always asks
//! SQLite to copy bound text (`SQLITE_TRANSIENT`), which for the ~1 KB of params of every event
//! is an allocation and a copy on the writer's hot path, on top of the copy into the record.

use std::ffi::{c_int, CStr};
use std::ptr::{self, NonNull};

use rusqlite::ffi;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// One prepared INSERT of the writer connection. It must be dropped before its connection (the
/// store keeps both in one struct, statements first).
pub(crate) struct BorrowingInsert {
    stmt: NonNull<ffi::sqlite3_stmt>,
    params: usize,
}

// SAFETY: a statement may be used from any thread as long as one thread at a time uses its
// connection (SQLite is built thread-safe); the store holds statement and connection under one
// mutex.
unsafe impl Send for BorrowingInsert {}

impl BorrowingInsert {
    /// Prepares `sql` (one INSERT statement) on `conn`.
    pub(crate) fn prepare(conn: &Connection, sql: &str) -> rusqlite::Result<Self> {
        let len = c_int::try_from(sql.len()).map_err(|_| misuse("statement text too long"))?;
        let mut stmt = ptr::null_mut();
        // SAFETY: the handle is live for the call; SQLite reads `len` bytes of `sql` and writes
        // the statement pointer.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                conn.handle(),
                sql.as_ptr().cast(),
                len,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            // SAFETY: the handle is live; it holds the message of the failed prepare.
            return Err(unsafe { failure(conn.handle(), rc) });
        }
        let stmt = NonNull::new(stmt).ok_or_else(|| misuse("empty statement"))?;
        // SAFETY: `stmt` was just prepared.
        let params = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) };
        Ok(BorrowingInsert {
            stmt,
            params: usize::try_from(params).unwrap_or(0),
        })
    }

    /// Binds `values` to the statement's parameters in order (missing ones are NULL, extra ones
    /// an error), runs it, and returns the rows it changed. SQLite lets go of the bound text
    /// before this returns, so borrowing it for the call is enough.
    pub(crate) fn execute<'v>(
        &mut self,
        values: impl IntoIterator<Item = ValueRef<'v>>,
    ) -> rusqlite::Result<usize> {
        let result = self.bind_and_step(values);
        // SAFETY: the statement is live; reset and clear_bindings only drop SQLite's references
        // to the bound values (their errors repeat the step's, already in `result`).
        unsafe {
            ffi::sqlite3_reset(self.stmt.as_ptr());
            ffi::sqlite3_clear_bindings(self.stmt.as_ptr());
        }
        result
    }

    fn bind_and_step<'v>(
        &mut self,
        values: impl IntoIterator<Item = ValueRef<'v>>,
    ) -> rusqlite::Result<usize> {
        let stmt = self.stmt.as_ptr();
        for (i, value) in values.into_iter().enumerate() {
            if i >= self.params {
                return Err(misuse("more values than parameters"));
            }
            let index = c_int::try_from(i + 1).map_err(|_| misuse("too many parameters"))?;
            // SAFETY: `stmt` is live and `index` in range; text and blobs are read in place
            // (SQLITE_STATIC) until the reset in `execute`, within the values' lifetime.
            let rc = unsafe {
                match value {
                    ValueRef::Null => ffi::sqlite3_bind_null(stmt, index),
                    ValueRef::Integer(n) => ffi::sqlite3_bind_int64(stmt, index, n),
                    ValueRef::Real(r) => ffi::sqlite3_bind_double(stmt, index, r),
                    ValueRef::Text(text) => ffi::sqlite3_bind_text(
                        stmt,
                        index,
                        text.as_ptr().cast(),
                        length(text)?,
                        ffi::SQLITE_STATIC(),
                    ),
                    ValueRef::Blob(blob) => ffi::sqlite3_bind_blob(
                        stmt,
                        index,
                        blob.as_ptr().cast(),
                        length(blob)?,
                        ffi::SQLITE_STATIC(),
                    ),
                }
            };
            self.check(rc)?;
        }
        // SAFETY: `stmt` is live with every parameter bound (or NULL).
        match unsafe { ffi::sqlite3_step(stmt) } {
            ffi::SQLITE_DONE => {
                // SAFETY: the statement's connection is live while the statement is.
                let changes = unsafe { ffi::sqlite3_changes64(ffi::sqlite3_db_handle(stmt)) };
                Ok(usize::try_from(changes).unwrap_or(0))
            }
            ffi::SQLITE_ROW => Err(misuse("an INSERT returned rows")),
            rc => Err(self.error(rc)),
        }
    }

    fn check(&self, rc: c_int) -> rusqlite::Result<()> {
        match rc {
            ffi::SQLITE_OK => Ok(()),
            rc => Err(self.error(rc)),
        }
    }

    fn error(&self, rc: c_int) -> rusqlite::Error {
        // SAFETY: the statement's connection is live while the statement is.
        unsafe { failure(ffi::sqlite3_db_handle(self.stmt.as_ptr()), rc) }
    }
}

impl Drop for BorrowingInsert {
    fn drop(&mut self) {
        // SAFETY: the statement is live and not used again.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

fn length(bytes: &[u8]) -> rusqlite::Result<c_int> {
    c_int::try_from(bytes.len()).map_err(|_| misuse("value longer than SQLite binds"))
}

/// The error SQLite reports for `rc` on `db`, with its message.
///
/// # Safety
/// `db` must be a live connection handle.
unsafe fn failure(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    let message = ffi::sqlite3_errmsg(db);
    let message =
        (!message.is_null()).then(|| CStr::from_ptr(message).to_string_lossy().into_owned());
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), message)
}

fn misuse(what: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_MISUSE), Some(what.to_owned()))
}

#[cfg(test)]
#[path = "sqlite_insert_tests.rs"]
mod tests;
