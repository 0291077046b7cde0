//! The hexagon's rule, which one crate can't make the compiler enforce: the
//! domain, the ports and the service never name an adapter or an I/O crate.

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "adapters",
    "poem",
    "poem_openapi",
    "redis",
    "bb8",
    "bb8_redis",
    "reqwest",
    "tokio",
    "figment",
];

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Each identifier-like word of the file's code (comments dropped).
fn words(source: &str) -> Vec<String> {
    source
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .flat_map(|line| line.split(|c: char| !(c.is_alphanumeric() || c == '_')))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_core_names_no_adapter_and_no_io_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/domain"), &mut files);
    files.push(root.join("src/ports.rs"));
    rust_files(&root.join("src/service"), &mut files);
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for word in words(&source) {
            assert!(
                !FORBIDDEN.contains(&word.as_str()),
                "{} names `{word}`",
                file.display()
            );
        }
    }
}

#[test]
fn the_check_catches_a_forbidden_import() {
    assert!(words("use crate::adapters::store::RedisStore;").contains(&"adapters".to_owned()));
    assert!(words("let c = redis::cmd(\"GET\");").contains(&"redis".to_owned()));
    assert!(!words("// poem is mentioned only in a comment").contains(&"poem".to_owned()));
}

/// What adapters may import of each other: what is declared shared (the
/// metrics registry, the Redis plumbing), and the HTTP adapter's two uses
/// of the SMS adapter it serves (the vendors' delivery reports, checked by
/// their own signature code, and the console's local inbox).
const SHARED: &[&str] = &["metrics", "redis"];
const ALLOWED: &[(&str, &str)] = &[("http", "sms")];

#[test]
fn adapters_import_each_other_only_through_what_is_shared() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let own = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        for file in files {
            let source = std::fs::read_to_string(&file).unwrap();
            for used in source.split("crate::adapters::").skip(1) {
                let other: String = used
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                checked += 1;
                assert!(
                    other == own
                        || SHARED.contains(&other.as_str())
                        || ALLOWED.contains(&(own.as_str(), other.as_str())),
                    "{} (adapters/{own}) imports adapters/{other}",
                    file.display()
                );
            }
        }
    }
    assert!(checked > 20, "{checked} imports checked");
}
