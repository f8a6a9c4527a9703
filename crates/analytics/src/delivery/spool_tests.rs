use std::fs;
use std::io::Write;

use super::*;

fn event(id: &str) -> EventEnvelope {
    EventEnvelope {
        event_type: "codex_turn_event".into(),
        event_params: serde_json::json!({ "turn_id": id }),
        event_id: id.into(),
    }
}

fn batch(ids: &[&str]) -> Batch {
    let events: Vec<_> = ids.iter().map(|id| event(id)).collect();
    Batch {
        payload: serde_json::to_vec(&events).unwrap(),
        events: events.len(),
        report: false,
    }
}

fn open(dir: &Path) -> Spool {
    Spool::open(dir, FsyncPolicy::EveryBatch, u64::MAX, 1024 * 1024).unwrap()
}

/// Reads, acks and returns every batch's ids, oldest first.
fn drain(spool: &mut Spool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    while let Some((rec, events)) = spool.peek().unwrap() {
        out.push(events.into_iter().map(|e| e.event_id).collect());
        spool.ack(&rec).unwrap();
    }
    out
}

fn ids(batches: &[&[&str]]) -> Vec<Vec<String>> {
    batches
        .iter()
        .map(|b| b.iter().map(|s| s.to_string()).collect())
        .collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == SEGMENT_EXT))
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_survives_reopen_and_empties_on_ack() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = open(dir.path());
        spool.append(&batch(&["a", "b"])).unwrap();
        spool.append(&batch(&["c"])).unwrap();
        assert_eq!(spool.stats().batches, 2);
        assert_eq!(spool.stats().events, 3);
    }
    let mut spool = open(dir.path());
    assert_eq!(spool.stats().batches, 2);
    assert_eq!(drain(&mut spool), ids(&[&["a", "b"], &["c"]]));
    assert_eq!(spool.stats(), SpoolStats::default());
    assert!(segment_files(dir.path()).is_empty());
}

#[test]
fn acknowledged_batches_are_not_resent_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = open(dir.path());
        for id in ["a", "b", "c"] {
            spool.append(&batch(&[id])).unwrap();
        }
        let (rec, _) = spool.peek().unwrap().unwrap();
        spool.ack(&rec).unwrap();
    }
    let mut spool = open(dir.path());
    assert_eq!(drain(&mut spool), ids(&[&["b"], &["c"]]));
}

#[test]
fn a_lost_cursor_only_resends() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = open(dir.path());
        spool.append(&batch(&["a"])).unwrap();
        spool.append(&batch(&["b"])).unwrap();
        let (rec, _) = spool.peek().unwrap().unwrap();
        spool.ack(&rec).unwrap();
    }
    fs::write(dir.path().join(CURSOR_FILE), "garbage").unwrap();
    let mut spool = open(dir.path());
    assert_eq!(drain(&mut spool), ids(&[&["a"], &["b"]]));
}

#[test]
fn torn_tail_is_truncated_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = open(dir.path());
        spool.append(&batch(&["a"])).unwrap();
        spool.append(&batch(&["b", "c"])).unwrap();
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    let good_len = fs::metadata(&seg).unwrap().len();
    // A crash in the middle of an append: half a record, no newline.
    let half = encode_record(&batch(&["d"]));
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&half[..half.len() / 2]).unwrap();
    drop(f);

    let mut spool = open(dir.path());
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        good_len,
        "tail truncated"
    );
    assert_eq!(spool.take_corrupt(), 1);
    spool.append(&batch(&["e"])).unwrap();
    assert_eq!(drain(&mut spool), ids(&[&["a"], &["b", "c"], &["e"]]));
}

#[test]
fn zero_filled_tail_after_power_loss_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = open(dir.path());
        spool.append(&batch(&["a"])).unwrap();
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    let good_len = fs::metadata(&seg).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0u8; 4096]).unwrap();
    drop(f);
    let mut spool = open(dir.path());
    assert_eq!(fs::metadata(&seg).unwrap().len(), good_len);
    assert_eq!(drain(&mut spool), ids(&[&["a"]]));
}

#[test]
fn a_damaged_record_in_the_middle_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = open(dir.path());
        for id in ["a", "b", "c"] {
            spool.append(&batch(&[id])).unwrap();
        }
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    // Flip a byte inside the second record's payload (its event id "b").
    let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let b_at = second
        + bytes[second..]
            .windows(3)
            .position(|w| w == b"\"b\"")
            .unwrap()
        + 1;
    bytes[b_at] = b'x';
    fs::write(&seg, &bytes).unwrap();

    let mut spool = open(dir.path());
    assert_eq!(spool.take_corrupt(), 1);
    assert_eq!(drain(&mut spool), ids(&[&["a"], &["c"]]));
}

#[test]
fn segments_rotate_and_are_deleted_once_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let record = encode_record(&batch(&["a"])).len() as u64;
    let mut spool = Spool::open(dir.path(), FsyncPolicy::Never, u64::MAX, 2 * record).unwrap();
    for id in ["a", "b", "c", "d", "e"] {
        spool.append(&batch(&[id])).unwrap();
    }
    assert_eq!(segment_files(dir.path()).len(), 3);
    assert_eq!(spool.stats().segments, 3);
    for _ in 0..2 {
        let (rec, _) = spool.peek().unwrap().unwrap();
        spool.ack(&rec).unwrap();
    }
    assert_eq!(segment_files(dir.path()).len(), 2, "first segment deleted");
    assert_eq!(spool.stats().bytes, 3 * record);
    assert_eq!(drain(&mut spool), ids(&[&["c"], &["d"], &["e"]]));
    assert!(segment_files(dir.path()).is_empty());
}

#[test]
fn new_batches_go_to_a_new_segment_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = open(dir.path());
        spool.append(&batch(&["a"])).unwrap();
    }
    let mut spool = open(dir.path());
    spool.append(&batch(&["b"])).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 2);
    assert_eq!(drain(&mut spool), ids(&[&["a"], &["b"]]));
}

#[test]
fn the_cap_refuses_new_batches_and_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let record = encode_record(&batch(&["a"])).len() as u64;
    let mut spool = Spool::open(dir.path(), FsyncPolicy::EveryBatch, 2 * record, 1 << 20).unwrap();
    spool.append(&batch(&["a"])).unwrap();
    spool.append(&batch(&["b"])).unwrap();
    assert!(matches!(
        spool.append(&batch(&["c"])),
        Err(AppendError::Full)
    ));
    assert_eq!(spool.stats().bytes, 2 * record);
    // Room comes back as batches are acknowledged.
    let (rec, _) = spool.peek().unwrap().unwrap();
    spool.ack(&rec).unwrap();
    let (rec, _) = spool.peek().unwrap().unwrap();
    spool.ack(&rec).unwrap();
    spool.append(&batch(&["d"])).unwrap();
    assert_eq!(drain(&mut spool), ids(&[&["d"]]));
}

#[test]
fn a_full_spool_still_keeps_drop_reports_within_their_reserve() {
    let dir = tempfile::tempdir().unwrap();
    let record = encode_record(&batch(&["a"])).len() as u64;
    let mut spool = Spool::open(dir.path(), FsyncPolicy::Never, record, 1 << 20).unwrap();
    spool.append(&batch(&["a"])).unwrap();
    assert!(matches!(
        spool.append(&batch(&["b"])),
        Err(AppendError::Full)
    ));
    let report = |id: &str| Batch {
        report: true,
        ..batch(&[id])
    };
    spool.append(&report("r1")).unwrap();
    // The reserve is bounded too.
    let mut kept = 1;
    while spool.append(&report("rn")).is_ok() {
        kept += 1;
    }
    assert!(spool.stats().bytes <= record + REPORT_RESERVE);
    assert!(kept > 100, "{kept}");
    assert_eq!(drain(&mut spool)[..2], ids(&[&["a"], &["r1"]])[..]);
}

#[test]
fn read_spool_stats_counts_the_backlog_without_touching_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path());
    spool.append(&batch(&["a", "b"])).unwrap();
    spool.append(&batch(&["c"])).unwrap();
    spool.append(&batch(&["d"])).unwrap();
    let (rec, _) = spool.peek().unwrap().unwrap();
    spool.ack(&rec).unwrap();
    let seg = segment_files(dir.path()).pop().unwrap();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(b"deadbeef 1 [").unwrap();
    drop(f);
    let before = fs::read(&seg).unwrap();

    let stats = read_spool_stats(dir.path()).unwrap();
    assert_eq!(stats.batches, 2);
    assert_eq!(stats.events, 2);
    assert_eq!(stats.segments, 1);
    assert_eq!(stats.bytes, before.len() as u64);
    assert_eq!(stats.corrupt_records, 1);
    assert_eq!(fs::read(&seg).unwrap(), before, "read-only");
}

#[test]
fn read_spool_stats_of_a_missing_spool_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let stats = read_spool_stats(&dir.path().join("nope")).unwrap();
    assert_eq!(stats, SpoolStats::default());
}

#[test]
fn leftover_tmp_files_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(CURSOR_TMP), "1 2").unwrap();
    let _spool = open(dir.path());
    assert!(!dir.path().join(CURSOR_TMP).exists());
}

#[test]
fn a_second_owner_is_refused_while_the_first_holds_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let err = Spool::open(dir.path(), FsyncPolicy::Never, u64::MAX, 1 << 20)
        .err()
        .unwrap();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    drop(first);
    let _second = open(dir.path());
}
