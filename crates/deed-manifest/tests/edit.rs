//! The edits deed makes to a manifest, on the same manifest written three
//! ways (`[table]` headers, dotted keys, inline tables): each edit says the
//! same thing afterwards, keeps every comment, and is validated.

use std::path::Path;

use deed_manifest::edit::{Edit, EditError, toml_string, write_atomically};
use deed_manifest::{ContractRef, Manifest};

fn env(name: &str) -> Option<String> {
    (name == "CATALOG_DATABASE_URL").then(|| "postgres://db.example/catalog".to_string())
}

fn parse(path: &Path, text: &str) -> Manifest {
    Manifest::parse(path, text, &env).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn r(text: &str) -> ContractRef {
    ContractRef::parse(text).unwrap()
}

/// What the manifest says, for the edits here: each service's contract
/// versions, reads and database as written.
fn says(m: &Manifest) -> Vec<String> {
    m.services
        .iter()
        .map(|s| {
            let versions: Vec<String> =
                s.contracts.iter().map(|c| format!("{}.v{}", c.name, c.version)).collect();
            let reads: Vec<String> = s.reads.iter().map(ToString::to_string).collect();
            format!(
                "{}: contracts {versions:?} reads {reads:?} database {:?}",
                s.name,
                s.database_written().map(|(w, _)| w)
            )
        })
        .collect()
}

#[test]
fn every_edit_keeps_comments_and_layout_however_the_manifest_is_written() {
    insta::glob!("fixtures/edit/*.toml", |path| {
        let original = std::fs::read_to_string(path).unwrap();
        let before = parse(path, &original);
        // Every comment stays but those on the lines of what the edits take
        // out (the old read) or copy without (the old version's header).
        let comments: Vec<&str> = original
            .lines()
            .filter(|l| !l.contains("\"catalog.products.v1\","))
            .filter_map(|l| l.find('#').map(|i| &l[i..]))
            .filter(|c| !c.starts_with("# published as"))
            .collect();

        // Cut over to a new version: bump, read it, stop reading the old,
        // then move the owner to its own database.
        let mut edit = Edit::of(&before).unwrap();
        assert_eq!(edit.bump_contract("catalog", "products", 1).unwrap(), r("catalog.products.v2"));
        edit.add_read("orders", &r("catalog.products.v2")).unwrap();
        edit.remove_read("orders", &r("catalog.products.v1")).unwrap();
        edit.set_database("catalog", Some("${CATALOG_DATABASE_URL}")).unwrap();
        edit.set_database("orders", None).unwrap();
        let after = edit.finish(&env).unwrap();
        assert_eq!(
            says(&after.manifest),
            [
                "catalog: contracts [\"products.v1\", \"products.v2\"] reads [] database Some(\"${CATALOG_DATABASE_URL}\")",
                "orders: contracts [] reads [\"catalog.products.v2\"] database None",
            ],
            "{}",
            after.text
        );
        for c in &comments {
            assert!(after.text.contains(c), "lost the comment {c:?}:\n{}", after.text);
        }
        assert!(!after.text.contains("# the old version"), "{}", after.text);
        insta::assert_snapshot!(after.text);

        // And back: the read of v1 returns, the database goes.
        let mut edit = Edit::of(&after.manifest).unwrap();
        edit.add_read("orders", &r("catalog.products.v1")).unwrap();
        edit.remove_read("orders", &r("catalog.products.v2")).unwrap();
        edit.set_database("catalog", None).unwrap();
        let back = edit.finish(&env).unwrap();
        assert_eq!(
            says(&back.manifest)[1],
            "orders: contracts [] reads [\"catalog.products.v1\"] database None"
        );
        assert_eq!(back.manifest.service("catalog").unwrap().database_written(), None);
    });
}

#[test]
fn the_bumped_copy_follows_its_version_and_drops_the_old_header_comment() {
    let path = Path::new("tests/fixtures/edit/tables.toml");
    let m = parse(path, &std::fs::read_to_string(path).unwrap());
    let mut edit = Edit::of(&m).unwrap();
    edit.bump_contract("catalog", "products", 1).unwrap();
    let text = edit.finish(&env).unwrap().text;
    let v1 = text.find("version = 1       # the first").unwrap();
    let note = text.find("# catalog.products.v2: a copy of v1").unwrap();
    let v2 = text.find("version = 2       # the first").unwrap();
    let orders = text.find("# The orders service reads the catalog.").unwrap();
    assert!(v1 < note && note < v2 && v2 < orders, "{text}");
    assert_eq!(text.matches("# published as catalog_api.products_v1").count(), 1, "{text}");
}

#[test]
fn an_edit_that_would_make_the_manifest_invalid_writes_nothing() {
    let path = Path::new("tests/fixtures/edit/tables.toml");
    let m = parse(path, &std::fs::read_to_string(path).unwrap());

    // A read of a version nobody publishes.
    let mut edit = Edit::of(&m).unwrap();
    edit.add_read("orders", &r("catalog.products.v9")).unwrap();
    match edit.finish(&env) {
        Err(EditError::Invalid(errors)) => {
            let text = errors.to_string();
            assert!(text.contains("catalog.products.v9"), "{text}");
            assert!(text.contains("tables.toml:"), "located: {text}");
        }
        other => panic!("expected Invalid, got {:?}", other.map(|e| e.text)),
    }

    // What the manifest does not say is refused, naming it.
    let mut edit = Edit::of(&m).unwrap();
    let e = edit.remove_read("orders", &r("catalog.products.v7")).unwrap_err();
    assert!(e.to_string().contains("does not list \"catalog.products.v7\""), "{e}");
    let e = edit.bump_contract("catalog", "products", 4).unwrap_err();
    assert!(e.to_string().contains("no contract products version 4"), "{e}");
    let e = edit.set_database("nobody", None).unwrap_err();
    assert!(e.to_string().contains("no service \"nobody\""), "{e}");
}

#[test]
fn hostile_values_are_escaped() {
    for text in ["a\"b", "back\\slash", "new\nline", "tab\tand\u{7}bell", "it's \"both\""] {
        let written = format!("x = {}\n", toml_string(text));
        let read: toml::Table = toml::from_str(&written).unwrap();
        assert_eq!(read["x"].as_str(), Some(text), "{written}");
    }
}

#[test]
fn writing_replaces_the_file_whole_and_keeps_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deed.toml");
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    write_atomically(&path, "new\n").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file is left behind");
}
