//! Test fixtures shared by the pack reader's and the pack indexer's tests: a repository whose
//! history git deltifies, built with git itself.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs git in `dir` with `input` on stdin (isolated from the user's configuration); its
/// stdout. Panics, naming the command, when git fails or is missing.
pub(crate) fn git(dir: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("git {args:?} does not start (is git installed?): {error}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "git {args:?} failed");
    output.stdout
}

/// A repository in `work` with several commits of similar files (git deltifies them into
/// chains) and an empty file.
pub(crate) fn deltified_history(work: &Path) {
    std::fs::create_dir_all(work).unwrap();
    git(work, &["init", "-q"], b"");
    let mut text = String::new();
    for round in 0..6 {
        for line in 0..400 {
            text.push_str(&format!("line {line} of round {round}: some shared text\n"));
        }
        for file in 0..5 {
            std::fs::write(work.join(format!("f{file}.txt")), format!("{file}\n{text}")).unwrap();
        }
        std::fs::write(work.join("empty"), "").unwrap();
        git(work, &["add", "-A"], b"");
        git(
            work,
            &["commit", "-q", "-m", &format!("round {round}")],
            b"",
        );
    }
}
