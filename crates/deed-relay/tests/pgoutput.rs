//! The pgoutput decoder on real bytes, without a server: each file under
//! `fixtures/pgoutput/` holds the messages a PostgreSQL slot returned (its
//! header says what made them). Every message decodes, what it decodes
//! to is snapshotted, and every message cut short anywhere is an error,
//! never a panic. Read with the manifest beside it (same name, `.toml`),
//! the messages become the envelopes the relay would publish, snapshotted
//! too: decoding and the envelope transform, without a server.

use deed_relay::pgoutput::{Message, decode};
use deed_relay::spec::CaptureSpec;
use deed_relay::transform::Transformer;

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

#[test]
fn real_messages_become_the_envelopes_the_relay_publishes() {
    insta::glob!("fixtures/pgoutput/*.txt", |path| {
        let manifest = deed_manifest::Manifest::load(&path.with_extension("toml")).unwrap();
        let spec = CaptureSpec::from_manifest(&manifest, "catalog").unwrap();
        let mut transformer = Transformer::new(&spec);
        let text = std::fs::read_to_string(path).unwrap();
        let mut out = String::new();
        for (lsn, bytes) in messages(&text) {
            let mut events = Vec::new();
            // A message the relay refuses is in the snapshot with its reason.
            let commit = match transformer.feed(decode(&bytes).unwrap(), &mut events) {
                Ok(c) => c,
                Err(e) => {
                    out.push_str(&format!("refused at {lsn}: {e}\n"));
                    None
                }
            };
            for e in &events {
                out.push_str(&String::from_utf8(e.to_json()).unwrap());
                out.push('\n');
            }
            if let Some(c) = commit {
                out.push_str(&format!("commit {} with {} events\n", lsn, c.events));
            }
        }
        insta::assert_snapshot!(out);
    });
}
