//! The durable spool: batches wait here, on disk, from the batcher until the sink answers 2xx.
//!
//! Layout of `spool_dir`:
//! - `{seq:020}.seg`: segment files, appended to, one record per batch. A record is one line,
//!   `{crc32:08x} {events} {payload}\n`, where `payload` is the batch's JSON array of events and the
//!   CRC covers `{events} {payload}`. Compact JSON never contains a raw newline, so a damaged record
//!   is skipped by resuming at the next `\n`.
//! - `cursor`: `{seq} {offset}`, the first byte not yet acknowledged: segments below `seq` and
//!   records of `seq` below `offset` are done. Replaced atomically (write `cursor.tmp`, rename) and
//!   never fsynced: losing it only re-sends acknowledged batches, which the collector dedupes.
//!
//! Recovery on open: `*.tmp` files are removed; segments behind the cursor are deleted; every other
//! segment is scanned, damaged records are skipped and counted, and a torn tail (a partial last
//! line, or garbage after the last good record) is truncated. New batches always go to a new
//! segment, so a segment written by a crashed process is only ever read.
//!
//! - `LOCK`: held (flock) by the one pipeline that owns the spool; a second `start` on the same
//!   spool fails instead of racing the first one's acknowledgements.
//!
//! Sending is FIFO (oldest batch first), so a cursor is all the acknowledgement state there is.
//! Plain text on purpose: privacy checks can grep the spool like any other sink.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::batcher::Batch;
use super::config::FsyncPolicy;
use super::envelope::EventEnvelope;

const SEGMENT_EXT: &str = "seg";
const CURSOR_FILE: &str = "cursor";
const CURSOR_TMP: &str = "cursor.tmp";
const LOCK_FILE: &str = "LOCK";

/// What the spool holds, for `tally analytics status` and for [`super::DeliveryStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpoolStats {
    /// Bytes of segment files on disk (what the cap measures).
    pub bytes: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// Batches waiting for a 2xx.
    pub batches: u64,
    /// Events in those batches.
    pub events: u64,
    /// Damaged or torn records found (and skipped) while reading.
    pub corrupt_records: u64,
}

/// Reads the spool's size and backlog without changing anything, so a CLI can report on a spool
/// that a running server owns (a record being appended right now is simply not counted).
pub fn read_spool_stats(spool_dir: &Path) -> io::Result<SpoolStats> {
    let mut stats = SpoolStats::default();
    let segments = match list_segments(spool_dir) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(stats),
        Err(e) => return Err(e),
    };
    let cursor = read_cursor(spool_dir);
    for seq in segments {
        let path = segment_path(spool_dir, seq);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            // Deleted by the owner between listing and reading: it was fully acknowledged.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        stats.bytes += bytes.len() as u64;
        stats.segments += 1;
        let scan = scan(&bytes, seq);
        stats.corrupt_records += scan.corrupt;
        for r in scan.records.iter().filter(|r| !cursor.acked(r)) {
            stats.batches += 1;
            stats.events += r.events as u64;
        }
    }
    Ok(stats)
}

/// Where one batch lives in the spool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordRef {
    pub(crate) seg: u64,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) events: usize,
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppendError {
    /// The batch would take the spool past its cap; it was not written.
    #[error("spool is full")]
    Full,
    /// The disk refused; the batch was not written.
    #[error("spool write failed: {0}")]
    Io(#[from] io::Error),
}

struct Active {
    seq: u64,
    file: File,
    len: u64,
    dirty: bool,
}

/// The open spool: segment files plus an in-memory FIFO of the records not yet acknowledged.
/// Bytes past the cap kept for drop reports (`tally_analytics_dropped`), so that the losses of
/// an outage that filled the spool are still counted once the collector is back: about an hour of
/// reports (one per counter that grew, every two seconds).
pub(crate) const REPORT_RESERVE: u64 = 1024 * 1024;

pub(crate) struct Spool {
    dir: PathBuf,
    /// Holds the directory lock for as long as the spool is open.
    _lock: File,
    fsync: FsyncPolicy,
    max_bytes: u64,
    segment_max_bytes: u64,
    /// seq → bytes on disk, for every segment file that exists.
    segments: BTreeMap<u64, u64>,
    pending: VecDeque<RecordRef>,
    pending_events: u64,
    active: Option<Active>,
    next_seq: u64,
    last_sync: Instant,
    corrupt: u64,
}

impl Spool {
    /// Opens (creating if needed) and recovers the spool in `dir`.
    pub(crate) fn open(
        dir: &Path,
        fsync: FsyncPolicy,
        max_bytes: u64,
        segment_max_bytes: u64,
    ) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        remove_tmp_files(dir)?;
        let cursor = read_cursor(dir);
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            _lock: lock,
            fsync,
            max_bytes,
            segment_max_bytes,
            segments: BTreeMap::new(),
            pending: VecDeque::new(),
            pending_events: 0,
            active: None,
            next_seq: cursor.seg.saturating_add(1),
            last_sync: Instant::now(),
            corrupt: 0,
        };
        for seq in list_segments(dir)? {
            spool.next_seq = spool.next_seq.max(seq.saturating_add(1));
            let path = segment_path(dir, seq);
            if seq < cursor.seg {
                remove_file_if_exists(&path)?;
                continue;
            }
            let bytes = fs::read(&path)?;
            let scan = scan(&bytes, seq);
            spool.corrupt += scan.corrupt;
            if scan.valid_end < bytes.len() as u64 {
                // The torn tail of a crashed append: cut it so the file ends on a record boundary.
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(scan.valid_end)?;
                tracing::warn!(
                    segment = seq,
                    truncated_bytes = bytes.len() as u64 - scan.valid_end,
                    "analytics spool: truncated a torn tail"
                );
            }
            let before = spool.pending.len();
            for r in scan.records.into_iter().filter(|r| !cursor.acked(r)) {
                spool.pending_events += r.events as u64;
                spool.pending.push_back(r);
            }
            if spool.pending.len() == before {
                remove_file_if_exists(&path)?;
            } else {
                spool.segments.insert(seq, scan.valid_end);
            }
        }
        if spool.corrupt > 0 {
            tracing::warn!(
                records = spool.corrupt,
                "analytics spool: skipped damaged records"
            );
        }
        Ok(spool)
    }

    /// Appends one batch (durably, per the fsync policy), or refuses it at the cap (a drop
    /// report past the cap too, within [`REPORT_RESERVE`]).
    pub(crate) fn append(&mut self, batch: &Batch) -> Result<(), AppendError> {
        let line = encode_record(batch);
        let len = line.len() as u64;
        let cap = if batch.report {
            self.max_bytes.saturating_add(REPORT_RESERVE)
        } else {
            self.max_bytes
        };
        if self.bytes().saturating_add(len) > cap {
            return Err(AppendError::Full);
        }
        if self
            .active
            .as_ref()
            .is_some_and(|a| a.len >= self.segment_max_bytes)
        {
            self.close_active()?;
        }
        if self.active.is_none() {
            self.open_new_segment()?;
        }
        let Some(active) = self.active.as_mut() else {
            return Err(AppendError::Io(io::Error::other("no active segment")));
        };
        let offset = active.len;
        if let Err(e) = active.file.write_all(&line) {
            // Undo a partial write so the segment still ends on a record boundary; if even that
            // fails, stop appending to this segment (recovery will cut the tail).
            if active.file.set_len(offset).is_err() {
                self.active = None;
            }
            return Err(e.into());
        }
        active.len += len;
        active.dirty = true;
        let seq = active.seq;
        self.segments.insert(seq, offset + len);
        self.pending.push_back(RecordRef {
            seg: seq,
            offset,
            len,
            events: batch.events,
        });
        self.pending_events += batch.events as u64;
        match self.fsync {
            FsyncPolicy::EveryBatch => self.sync()?,
            FsyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync()?,
            _ => {}
        }
        Ok(())
    }

    /// The oldest batch not yet acknowledged, read back from disk; damaged records on the way are
    /// dropped and counted (see [`Spool::take_corrupt`]).
    pub(crate) fn peek(&mut self) -> io::Result<Option<(RecordRef, Vec<EventEnvelope>)>> {
        while let Some(rec) = self.pending.front().copied() {
            match self.read_record(&rec)? {
                ReadBack::Batch(events) => return Ok(Some((rec, events))),
                ReadBack::Damaged => {
                    self.corrupt += 1;
                    self.ack(&rec)?;
                }
                // Deleted behind our back (only a second owner could): nothing left to send.
                ReadBack::Gone => self.ack(&rec)?,
            }
        }
        Ok(None)
    }

    /// Marks the oldest batch as done (2xx, or dropped and counted): it leaves the spool.
    pub(crate) fn ack(&mut self, rec: &RecordRef) -> io::Result<()> {
        if self.pending.front() != Some(rec) {
            return Err(io::Error::other("ack out of order"));
        }
        self.pending.pop_front();
        self.pending_events = self.pending_events.saturating_sub(rec.events as u64);
        let segment_done = self.pending.front().is_none_or(|next| next.seg != rec.seg);
        if segment_done {
            if self.active.as_ref().is_some_and(|a| a.seq == rec.seg) {
                self.active = None;
            }
            remove_file_if_exists(&segment_path(&self.dir, rec.seg))?;
            self.segments.remove(&rec.seg);
            // A cursor still naming this segment is harmless: recovery treats a missing
            // segment as done, so no cursor write is needed here.
        } else {
            write_cursor(&self.dir, rec.seg, rec.offset + rec.len)?;
        }
        Ok(())
    }

    /// Forces appended batches to disk now (used by the interval policy and on close).
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        if let Some(active) = self.active.as_mut() {
            if active.dirty {
                active.file.sync_data()?;
                active.dirty = false;
            }
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Damaged records found since the last call (at open, or while reading back).
    pub(crate) fn take_corrupt(&mut self) -> u64 {
        std::mem::take(&mut self.corrupt)
    }

    /// Bytes of segment files on disk.
    pub(crate) fn bytes(&self) -> u64 {
        self.segments.values().sum()
    }

    /// A snapshot for stats.
    pub(crate) fn stats(&self) -> SpoolStats {
        SpoolStats {
            bytes: self.bytes(),
            segments: self.segments.len() as u64,
            batches: self.pending.len() as u64,
            events: self.pending_events,
            corrupt_records: self.corrupt,
        }
    }

    fn open_new_segment(&mut self) -> io::Result<()> {
        let seq = self.next_seq;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(segment_path(&self.dir, seq))?;
        if self.fsync == FsyncPolicy::EveryBatch {
            // Make the new directory entry durable too, or a power loss could lose the file.
            sync_dir(&self.dir)?;
        }
        self.next_seq += 1;
        self.segments.insert(seq, 0);
        self.active = Some(Active {
            seq,
            file,
            len: 0,
            dirty: false,
        });
        Ok(())
    }

    fn close_active(&mut self) -> io::Result<()> {
        if self.fsync != FsyncPolicy::Never {
            self.sync()?;
        }
        self.active = None;
        Ok(())
    }

    fn read_record(&self, rec: &RecordRef) -> io::Result<ReadBack> {
        let mut file = match File::open(segment_path(&self.dir, rec.seg)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ReadBack::Gone),
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(rec.offset))?;
        let Ok(len) = usize::try_from(rec.len) else {
            return Ok(ReadBack::Damaged);
        };
        let mut line = vec![0; len];
        match file.read_exact(&mut line) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(ReadBack::Damaged),
            Err(e) => return Err(e),
        }
        let Some((events, payload)) = parse_record(&line) else {
            return Ok(ReadBack::Damaged);
        };
        match serde_json::from_slice::<Vec<EventEnvelope>>(payload) {
            Ok(batch) if batch.len() == events => Ok(ReadBack::Batch(batch)),
            _ => Ok(ReadBack::Damaged),
        }
    }
}

/// A record read back from disk.
enum ReadBack {
    Batch(Vec<EventEnvelope>),
    /// CRC or shape is wrong: skip and count.
    Damaged,
    /// Its segment file no longer exists.
    Gone,
}

impl Drop for Spool {
    fn drop(&mut self) {
        // Best effort for the interval policy; EveryBatch is already synced, Never does not care.
        if matches!(self.fsync, FsyncPolicy::Interval(_)) {
            let _ = self.sync();
        }
    }
}

/// The acknowledged prefix of the spool.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    seg: u64,
    offset: u64,
}

impl Cursor {
    fn acked(&self, r: &RecordRef) -> bool {
        r.seg < self.seg || (r.seg == self.seg && r.offset < self.offset)
    }
}

/// Result of scanning one segment's bytes.
struct Scan {
    records: Vec<RecordRef>,
    /// End of the last good record: everything after it is a torn tail.
    valid_end: u64,
    corrupt: u64,
}

fn scan(bytes: &[u8], seq: u64) -> Scan {
    let mut records = Vec::new();
    let mut valid_end = 0u64;
    let mut corrupt = 0u64;
    let mut pos = 0usize;
    while pos < bytes.len() {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            // A last line without its newline: the append never finished.
            corrupt += 1;
            break;
        };
        let line = &bytes[pos..=pos + nl];
        match parse_record(line) {
            Some((events, _)) => {
                records.push(RecordRef {
                    seg: seq,
                    offset: pos as u64,
                    len: line.len() as u64,
                    events,
                });
                valid_end = (pos + line.len()) as u64;
            }
            None => corrupt += 1,
        }
        pos += line.len();
    }
    Scan {
        records,
        valid_end,
        corrupt,
    }
}

fn encode_record(batch: &Batch) -> Vec<u8> {
    let mut body = format!("{} ", batch.events).into_bytes();
    body.extend_from_slice(&batch.payload);
    let crc = crc32fast::hash(&body);
    let mut line = format!("{crc:08x} ").into_bytes();
    line.extend_from_slice(&body);
    line.push(b'\n');
    line
}

/// Splits a record line (with its `\n`) into event count and payload, checking the CRC.
fn parse_record(line: &[u8]) -> Option<(usize, &[u8])> {
    let line = line.strip_suffix(b"\n")?;
    let (crc_hex, body) = (line.get(..8)?, line.get(9..)?);
    if line.get(8) != Some(&b' ') {
        return None;
    }
    let crc = u32::from_str_radix(std::str::from_utf8(crc_hex).ok()?, 16).ok()?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let space = body.iter().position(|&b| b == b' ')?;
    let events: usize = std::str::from_utf8(&body[..space]).ok()?.parse().ok()?;
    let payload = &body[space + 1..];
    (events > 0 && payload.first() == Some(&b'[')).then_some((events, payload))
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.{SEGMENT_EXT}"))
}

fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(&format!(".{SEGMENT_EXT}")) {
            if let Ok(seq) = stem.parse::<u64>() {
                seqs.push(seq);
            }
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

fn remove_tmp_files(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            remove_file_if_exists(&path)?;
        }
    }
    Ok(())
}

fn remove_file_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A missing or unreadable cursor means "nothing acknowledged": at worst, batches are re-sent.
fn read_cursor(dir: &Path) -> Cursor {
    let Ok(text) = fs::read_to_string(dir.join(CURSOR_FILE)) else {
        return Cursor::default();
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(seg)), Some(Ok(offset)), None) => Cursor { seg, offset },
        _ => Cursor::default(),
    }
}

fn write_cursor(dir: &Path, seg: u64, offset: u64) -> io::Result<()> {
    let tmp = dir.join(CURSOR_TMP);
    fs::write(&tmp, format!("{seg} {offset}\n"))?;
    fs::rename(&tmp, dir.join(CURSOR_FILE))
}

/// Takes the spool's exclusive lock, or fails with `WouldBlock` if another pipeline holds it.
#[cfg(unix)]
fn lock_dir(dir: &Path) -> io::Result<File> {
    use std::os::fd::AsRawFd;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    // SAFETY: flock takes a file descriptor that `file` owns and keeps open; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "analytics spool is in use by another delivery pipeline",
            ));
        }
        return Err(err);
    }
    Ok(file)
}

#[cfg(not(unix))]
fn lock_dir(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
