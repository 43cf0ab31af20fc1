//! The pgoutput decoder on real bytes, without a server: each file under
//! `fixtures/pgoutput/` holds the messages a PostgreSQL slot returned (its
//! header says what made them). Every message decodes, what it decodes
//! to is snapshotted, and every message cut short anywhere is an error,
//! never a panic.

use deed_relay::pgoutput::{Message, decode};

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn messages(text: &str) -> Vec<(String, Vec<u8>)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (lsn, hex) = l.split_once(' ').expect("LSN, then hex");
            (lsn.to_string(), unhex(hex.trim()))
        })
        .collect()
}

/// One line per message; long values cut, so the snapshot stays readable.
fn describe(m: &Message<'_>) -> String {
    let text = format!("{m:?}");
    if text.len() > 400 { format!("{}… ({} bytes)", &text[..400], text.len()) } else { text }
}

#[test]
fn real_messages_decode_and_cut_ones_are_refused() {
    insta::glob!("fixtures/pgoutput/*.txt", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let mut out = String::new();
        for (lsn, bytes) in messages(&text) {
            let m = decode(&bytes).unwrap_or_else(|e| panic!("{lsn}: {e}"));
            out.push_str(&format!("{lsn} {}\n", describe(&m)));
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err(), "{lsn} cut to {cut} bytes decoded");
            }
        }
        insta::assert_snapshot!(out);
    });
}
