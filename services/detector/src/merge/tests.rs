use super::*;

const M: i64 = MINUTE_MS;

fn part(rank: u8, partition: i32) -> PartId {
    PartId { rank, partition }
}

/// A finished input: per partition, its records' event times in offset order.
fn logs() -> Vec<(PartId, Vec<i64>)> {
    vec![
        // signatures, out of order within the partition (late shipping)
        (part(5, 0), vec![3 * M + 5, M + 1, 4 * M, 4 * M + 7, 9 * M]),
        (part(5, 1), vec![0, 2 * M, 2 * M + 1]),
        // traffic
        (part(2, 0), vec![M, 2 * M, 3 * M, 4 * M, 5 * M, 6 * M]),
        (part(2, 1), vec![0, M, 2 * M]),
        // deploys
        (part(0, 0), vec![4 * M + 30_000]),
        // builds: empty
        (part(1, 0), vec![]),
    ]
}

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Runs a merge over `logs` from `start` offsets, the consumer delivering
/// records in random chunks per `seed` and the merge popping whenever it
/// can; a partition is caught up once all its records were delivered.
/// Stops after `stop_after` pops (a kill). Returns what was popped.
fn run(
    logs: &[(PartId, Vec<i64>)],
    start: &BTreeMap<PartId, i64>,
    seed: u64,
    stop_after: usize,
) -> Vec<(PartId, i64)> {
    let mut now = Instant::now();
    let mut merge = Merge::new(Limits::default());
    merge.assign(logs.iter().map(|(p, _)| *p), now);
    let mut next: BTreeMap<PartId, usize> = logs
        .iter()
        .map(|(p, _)| (*p, start.get(p).copied().unwrap_or(0) as usize))
        .collect();
    let mut rng = Rng(seed | 1);
    let mut out = Vec::new();
    loop {
        now += Duration::from_millis(100);
        // Deliver a random chunk of one partition.
        let (p, log) = &logs[rng.next(logs.len())];
        let n = rng.next(3);
        for _ in 0..n {
            let o = next[p];
            if o < log.len() {
                assert!(merge.push(*p, o as i64, Some(log[o]), (), now));
                *next.get_mut(p).unwrap() += 1;
            }
        }
        let caught_up = |id: PartId| {
            let len = logs.iter().find(|(q, _)| *q == id).unwrap().1.len();
            if next[&id] >= len {
                Skip::CaughtUp
            } else {
                Skip::Lagging
            }
        };
        while let Some(popped) = merge.pop(now, caught_up) {
            assert!(popped.passed_idle.is_empty());
            out.push((popped.part, popped.offset));
            if out.len() == stop_after {
                return out;
            }
        }
        let done = logs.iter().all(|(p, log)| next[p] >= log.len());
        if done && merge.is_empty() {
            return out;
        }
    }
}

#[test]
fn finished_input_is_merged_in_one_order_whatever_the_fetch_order() {
    let logs = logs();
    let reference = run(&logs, &BTreeMap::new(), 1, usize::MAX);
    let total: usize = logs.iter().map(|(_, l)| l.len()).sum();
    assert_eq!(reference.len(), total);
    for seed in 2..200 {
        assert_eq!(
            run(&logs, &BTreeMap::new(), seed, usize::MAX),
            reference,
            "seed {seed}"
        );
    }
    // Minute by minute, deploys before traffic before signatures; within a
    // partition, offsets in order.
    let keys: Vec<Key> = reference
        .iter()
        .map(|(p, o)| {
            let t = logs.iter().find(|(q, _)| q == p).unwrap().1[*o as usize];
            Key::new(*p, *o, Some(t))
        })
        .collect();
    let minute4: Vec<u8> = keys
        .iter()
        .filter(|k| k.minute == 4)
        .map(|k| k.rank)
        .collect();
    assert_eq!(minute4, vec![0, 2, 5, 5], "{keys:?}");
}

#[test]
fn a_run_killed_and_resumed_from_its_committed_offsets_processes_the_same_sequence() {
    let logs = logs();
    let reference = run(&logs, &BTreeMap::new(), 1, usize::MAX);
    for (seed, kill_at) in [(3, 1), (5, 4), (7, 9), (11, 13)] {
        let first = run(&logs, &BTreeMap::new(), seed, kill_at);
        // Committed: per partition, the offset after its last processed record.
        let mut committed = BTreeMap::new();
        for (p, o) in &first {
            committed.insert(*p, o + 1);
        }
        let rest = run(&logs, &committed, seed * 31, usize::MAX);
        let whole: Vec<_> = first.into_iter().chain(rest).collect();
        assert_eq!(whole, reference, "killed after {kill_at}");
    }
}

#[test]
fn an_empty_partition_holds_the_others_back_for_a_bounded_time_and_is_reported_once() {
    let limits = Limits {
        unknown: Duration::from_secs(2),
        lagging: Duration::from_secs(30),
        caught_up: Duration::from_millis(500),
        buffered: 10,
    };
    let t0 = Instant::now();
    let (a, b) = (part(2, 0), part(5, 0));
    let mut merge = Merge::new(limits);
    merge.assign([a, b], t0);
    merge.push(a, 0, Some(M), "a0", t0);
    merge.push(a, 1, Some(2 * M), "a1", t0);
    // b unknown: waits 2 s.
    assert!(merge
        .pop(t0 + Duration::from_secs(1), |_| Skip::Unknown)
        .is_none());
    let p = merge
        .pop(t0 + Duration::from_secs(2), |_| Skip::Unknown)
        .unwrap();
    assert_eq!((p.item, p.passed_idle), ("a0", vec![b]));
    // Passed over again in the same spell: not reported twice.
    let p = merge
        .pop(t0 + Duration::from_secs(2), |_| Skip::Unknown)
        .unwrap();
    assert_eq!((p.item, p.passed_idle.len()), ("a1", 0));
    // a is now empty too (since t0+2 s); b gets a record; a lagging holds b
    // back for 30 s.
    merge.push(b, 0, Some(3 * M), "b0", t0 + Duration::from_secs(2));
    let lagging = |p: PartId| {
        if p == a {
            Skip::Lagging
        } else {
            Skip::CaughtUp
        }
    };
    assert!(merge.pop(t0 + Duration::from_secs(20), lagging).is_none());
    let p = merge.pop(t0 + Duration::from_secs(32), lagging).unwrap();
    assert_eq!((p.item, p.passed_idle), ("b0", vec![a]));
    // A caught-up empty partition holds a record back only for a moment
    // after the record arrived (b1 at t0+2 s).
    merge.push(b, 1, Some(4 * M), "b1", t0 + Duration::from_secs(2));
    assert!(merge
        .pop(t0 + Duration::from_millis(2_400), |_| Skip::CaughtUp)
        .is_none());
    let p = merge
        .pop(t0 + Duration::from_millis(2_500), |_| Skip::CaughtUp)
        .unwrap();
    assert_eq!((p.item, p.passed_idle.len()), ("b1", 0));
}

#[test]
fn records_of_unassigned_partitions_and_redeliveries_are_not_buffered() {
    let t0 = Instant::now();
    let (a, b) = (part(2, 0), part(5, 0));
    let mut merge = Merge::new(Limits::default());
    merge.assign([a], t0);
    assert!(!merge.push(b, 0, Some(0), (), t0));
    assert!(merge.push(a, 5, Some(0), (), t0));
    assert!(!merge.push(a, 5, Some(0), (), t0), "re-delivered offset");
    assert!(!merge.push(a, 4, Some(0), (), t0), "older offset");
    assert!(merge.push(a, 6, Some(0), (), t0));
    assert_eq!(merge.buffered(a), 2);
    // Revoked: its buffer goes (the new owner reads it again).
    merge.assign([b], t0);
    assert_eq!(merge.len(), 0);
    assert_eq!(merge.parts().collect::<Vec<_>>(), vec![b]);
}

#[test]
fn a_record_without_an_event_time_goes_first() {
    let t0 = Instant::now();
    let a = part(5, 0);
    let mut merge = Merge::new(Limits::default());
    merge.assign([a, part(2, 0)], t0);
    merge.push(a, 0, Some(M), "timed", t0);
    let mut m2 = Merge::new(Limits::default());
    m2.assign([a, part(2, 0)], t0);
    m2.push(part(2, 0), 0, None, "poison", t0);
    m2.push(a, 0, Some(M), "timed", t0);
    let later = t0 + Duration::from_secs(1);
    assert_eq!(m2.pop(later, |_| Skip::CaughtUp).unwrap().item, "poison");
    assert_eq!(merge.pop(later, |_| Skip::CaughtUp).unwrap().item, "timed");
}
