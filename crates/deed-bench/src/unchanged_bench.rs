//! What the relay pays to skip no-op updates without old rows: a digest
//! of each update's published values and a lookup in its memory of each
//! key's last digest. Measured per event on synthetic rows, beside the
//! same loop that only builds the values (the baseline).

use std::time::Instant;

use deed_relay::pgoutput::Value;
use deed_relay::unchanged::{Seen, digest};

pub fn run(events: u64, keys: u64) -> anyhow::Result<()> {
    let texts = |i: u64| [(i % keys).to_string(), (i / keys).to_string()];
    fn row(t: &[String; 2]) -> [Value<'_>; 3] {
        [Value::Text(&t[0]), Value::Text(&t[1]), Value::Text("42")]
    }
    let started = Instant::now();
    let mut sink = 0usize;
    for i in 0..events {
        sink += row(&texts(i)).len();
    }
    let baseline = started.elapsed().as_secs_f64();
    let mut seen = Seen::default();
    let started = Instant::now();
    let mut skipped = 0u64;
    for i in 0..events {
        let t = texts(i);
        let values = row(&t);
        let d = digest(values.iter());
        let key = format!("{{\"id\":{}}}", i % keys);
        if seen.is_last("changed", &key, d) {
            skipped += 1;
        }
        seen.publish("changed", &key, d);
    }
    let with_memory = started.elapsed().as_secs_f64();
    println!(
        "unchanged = \"skip\" without old rows: {events} updates over {keys} keys; \
         {:.0} ns per event with the digest and the memory, {:.0} ns building the values alone \
         (so {:.0} ns for skipping); {skipped} skipped; checksum {sink}",
        with_memory * 1e9 / events as f64,
        baseline * 1e9 / events as f64,
        (with_memory - baseline) * 1e9 / events as f64
    );
    Ok(())
}
