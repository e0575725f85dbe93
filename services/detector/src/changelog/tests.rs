use selfheal_common::config::DetectorConfig;
use selfheal_schemas::{AnyEvent, Deploy, SignatureCount};

use super::*;
use crate::core::Detector;

/// Bound asserted on every record (key + value): half Kafka's default limit.
const RECORD_BOUND: usize = 512 * 1024;
const T0: i64 = 1_800_000_000_000;

fn count(service: &str, sig: usize, stack_bytes: usize) -> AnyEvent {
    AnyEvent::SignatureCount(SignatureCount {
        service: service.into(),
        revision: "a".into(),
        signature: format!("{sig:016x}"),
        // The templates ingest writes are at most 200 characters; the
        // detector holds whatever arrives, so test bigger ones.
        template: format!("{sig} {}", "word <*> ".repeat(100)),
        exception_type: Some("TimeoutError".into()),
        level: "error".into(),
        count: 1,
        first_seen_ms: T0 + sig as i64,
        last_seen_ms: T0 + sig as i64,
        sample_message: format!("{sig} {}", "m".repeat(2_000)),
        sample_stack: Some("  File \"/app/x.py\", line 1, in f\n".repeat(stack_bytes / 32)),
        frames: vec![],
        trace_id: None,
    })
}

fn deploy(service: &str, diff_bytes: usize) -> AnyEvent {
    AnyEvent::Deploy(Deploy {
        service: service.into(),
        diff: Some("+x\n".repeat(diff_bytes / 3)),
        deployed_at_ms: T0 + 10_000,
        ..selfheal_schemas::testing::deploy()
    })
}

fn write(d: &mut Detector, w: &mut Writer, service: &str) -> Vec<Record> {
    let parts = d.snapshot_parts(service).transpose().unwrap();
    let mut out = Vec::new();
    w.update(service, parts.as_ref(), &mut out);
    out
}

fn read(records: &[Record]) -> Restored {
    let mut r = Reader::default();
    for rec in records {
        r.apply(&rec.key, rec.value.as_deref());
    }
    r.finish()
}

fn restore_into(found: Restored, service: &str) -> Detector {
    let mut e = Detector::new(DetectorConfig::default());
    let s = &found.services[service];
    let RestoredHead::Parts(head) = &s.head else {
        panic!("a head part")
    };
    e.restore_parts(
        service,
        head,
        s.signatures
            .iter()
            .map(|(id, b, _)| (id.as_str(), b.as_slice())),
    )
    .unwrap();
    e
}

fn state(d: &Detector, service: &str) -> serde_json::Value {
    serde_json::to_value(d.snapshot(service).unwrap()).unwrap()
}

#[test]
fn five_thousand_big_signatures_fit_in_bounded_records_and_restore_exactly() {
    let mut d = Detector::new(DetectorConfig::default());
    for i in 0..5_000 {
        d.on_event(&count("checkout", i, 8_000));
    }
    d.on_event(&deploy("checkout", 2_000_000));
    let mut w = Writer::default();
    w.set_partition("checkout", 2);
    let records = write(&mut d, &mut w, "checkout");
    assert!(records.len() > 5_000);
    let biggest = records
        .iter()
        .map(|r| r.key.len() + r.value.as_ref().map_or(0, Vec::len))
        .max()
        .unwrap();
    assert!(biggest < RECORD_BOUND, "{biggest} bytes");
    let found = read(&records);
    assert!(found.errors.is_empty(), "{:?}", found.errors);
    assert_eq!(found.services["checkout"].partition, 2);
    assert_eq!(found.services["checkout"].signatures.len(), 5_000);
    let e = restore_into(found, "checkout");
    assert_eq!(state(&e, "checkout"), state(&d, "checkout"));
}

#[test]
fn only_changed_parts_are_written_again() {
    let mut d = Detector::new(DetectorConfig::default());
    for i in 0..10 {
        d.on_event(&count("checkout", i, 100));
    }
    let mut w = Writer::default();
    let first = write(&mut d, &mut w, "checkout");
    assert_eq!(first.len(), 11);
    assert!(write(&mut d, &mut w, "checkout").is_empty());
    d.on_event(&count("checkout", 3, 100));
    let again = write(&mut d, &mut w, "checkout");
    // The signature and the head (max event time, first seen) at most.
    assert!(!again.is_empty() && again.len() <= 2, "{again:?}");
    assert!(again
        .iter()
        .any(|r| r.key == b"checkout\x000000000000000003"));
}

#[test]
fn a_shrunken_part_and_gone_service_leave_tombstones() {
    let mut d = Detector::new(DetectorConfig::default());
    d.on_event(&count("checkout", 1, 100));
    d.on_event(&deploy("checkout", 1_000_000));
    let mut w = Writer::default();
    let mut log = write(&mut d, &mut w, "checkout");
    let head_chunks = log
        .iter()
        .filter(|r| r.key.starts_with(b"checkout\x00#"))
        .count();
    assert!(head_chunks >= 3, "a 1 MB diff takes several chunks");
    // The same state restored from the log, with a small deploy instead.
    let mut d2 = Detector::new(DetectorConfig::default());
    d2.on_event(&count("checkout", 1, 100));
    d2.on_event(&deploy("checkout", 10));
    let shrink = write(&mut d2, &mut w, "checkout");
    let tombs = shrink.iter().filter(|r| r.value.is_none()).count();
    assert_eq!(tombs, head_chunks);
    log.extend(shrink);
    let e = restore_into(read(&log), "checkout");
    assert_eq!(state(&e, "checkout"), state(&d2, "checkout"));
    // Evicted: every key of the service gets a tombstone.
    let mut gone = Vec::new();
    w.update("checkout", None, &mut gone);
    assert!(gone.iter().all(|r| r.value.is_none()));
    assert_eq!(gone.len(), 2);
    log.extend(gone);
    let found = read(&log);
    assert!(found.services.is_empty() && found.errors.is_empty() && found.orphans == 0);
}

#[test]
fn a_restored_writer_writes_nothing_unchanged() {
    let mut d = Detector::new(DetectorConfig::default());
    for i in 0..5 {
        d.on_event(&count("checkout", i, 100));
    }
    let mut w = Writer::default();
    let log = write(&mut d, &mut w, "checkout");
    let found = read(&log);
    let mut w2 = Writer::default();
    w2.note_restored("checkout", &found.services["checkout"]);
    let mut e = restore_into(found, "checkout");
    assert!(write(&mut e, &mut w2, "checkout").is_empty());
}

#[test]
fn garbage_and_missing_chunks_are_reported() {
    let mut d = Detector::new(DetectorConfig::default());
    d.on_event(&count("checkout", 1, 100));
    d.on_event(&deploy("checkout", 600_000));
    let mut w = Writer::default();
    let mut log = write(&mut d, &mut w, "checkout");
    // Lose the head's last chunk; add garbage under another key.
    let last = log
        .iter()
        .rposition(|r| r.key.starts_with(b"checkout\x00#"))
        .unwrap();
    log.remove(last);
    log.push(Record {
        key: b"other".to_vec(),
        value: Some(b"\x01\x02garbage".to_vec()),
    });
    let found = read(&log);
    assert_eq!(found.errors.len(), 2, "{:?}", found.errors);
    assert!(found.errors.iter().any(|e| e.contains("missing")));
    assert!(found
        .errors
        .iter()
        .any(|e| e.contains("not a changelog record")));
    // The head is lost, so its signature is an orphan, not restored alone.
    assert!(found.services.is_empty());
    assert_eq!(found.orphans, 1);
}

#[test]
fn the_previous_format_is_still_read() {
    let mut d = Detector::new(DetectorConfig::default());
    d.on_event(&count("checkout", 1, 100));
    let legacy = serde_json::to_vec(&LegacyRecord {
        partition: 1,
        snapshot: d.snapshot("checkout").unwrap(),
    })
    .unwrap();
    let found = read(&[Record {
        key: b"checkout".to_vec(),
        value: Some(legacy),
    }]);
    let s = &found.services["checkout"];
    assert_eq!(s.partition, 1);
    let RestoredHead::Legacy(snapshot) = &s.head else {
        panic!("legacy")
    };
    assert_eq!(snapshot.signatures(), 1);
}
