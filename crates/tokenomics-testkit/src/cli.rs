//! Driving a binary's numeric flags with hostile values: every one must be refused in one line on
//! stderr with the usage exit code, never by a panic.

use std::path::Path;
use std::process::Command;

/// The values every numeric flag is tried with.
pub const HOSTILE: [&str; 7] = ["0", "-1", "nan", "inf", "1e300", "18446744073709551616", ""];

/// A numeric flag and the hostile values it accepts as valid (e.g. `0` for a seed or a count of
/// warm-up requests).
pub struct NumericFlag {
    pub flag: &'static str,
    pub valid: &'static [&'static str],
}

impl NumericFlag {
    pub const fn new(flag: &'static str) -> Self {
        Self { flag, valid: &[] }
    }
    pub const fn accepting(flag: &'static str, valid: &'static [&'static str]) -> Self {
        Self { flag, valid }
    }
}

/// Runs `binary base… FLAG VALUE` for every flag and every hostile value the flag does not
/// accept, and asserts exit code 2, exactly one line on stderr naming the flag, and no panic.
/// Returns how many runs were checked.
pub fn assert_refused(binary: &Path, base: &[&str], flags: &[NumericFlag]) -> usize {
    let mut checked = 0;
    for f in flags {
        for value in HOSTILE.iter().filter(|v| !f.valid.contains(v)) {
            let out = Command::new(binary)
                .args(base)
                .args([f.flag, value])
                .env_remove("OPENAI_API_KEY")
                .output()
                .expect("the binary runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            let what = format!("{} {:?}", f.flag, value);
            assert_ne!(out.status.code(), Some(101), "{what} panicked: {stderr}");
            assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
            assert_eq!(
                stderr.trim_end().lines().count(),
                1,
                "{what}: one line on stderr, got {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{what}: {stderr}");
            let name = f.flag.trim_start_matches('-');
            assert!(
                stderr.contains(name) || stderr.contains(&name.replace('_', "-")),
                "{what}: the message names the flag: {stderr}"
            );
            checked += 1;
        }
    }
    checked
}

/// Asserts that a run was refused as bad usage: exit code 2 (no panic) and exactly one line on
/// stderr, which says `says`. `what` names the case in a failure.
pub fn assert_usage_error(out: &std::process::Output, what: &str, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{what}: one line on stderr, got {stderr}"
    );
    assert!(
        stderr.contains(says),
        "{what}: expected {says:?} in {stderr}"
    );
}

/// The long flags a binary's `--help` lists (their underscore names; kebab-case aliases and
/// `--help`/`--version` left out).
pub fn help_flags(binary: &Path) -> Vec<String> {
    let out = Command::new(binary)
        .arg("--help")
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut flags: Vec<String> = text
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("--") || l.starts_with('-') && l.get(2..4) == Some(", "))
        .filter_map(|l| {
            let at = l.find("--")?;
            let name: String = l[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '=' && *c != '<' && *c != ',')
                .collect();
            Some(name)
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect();
    flags.dedup();
    flags
}

/// Asserts that every flag `--help` lists is documented in the Markdown file `doc` (a chapter of
/// the book, `docs/src/`), in its section headed by `heading` (the section runs to the next
/// heading of the same or a higher level), as `` `--flag` `` or `` `--flag VALUE` ``: a flag
/// cannot be added without its documentation.
pub fn assert_flags_documented(binary: &Path, doc: &Path, heading: &str) {
    let text = std::fs::read_to_string(doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
    let start = text
        .lines()
        .position(|l| l.starts_with('#') && l.trim_start_matches('#').trim() == heading)
        .unwrap_or_else(|| panic!("no section {heading:?} in {}", doc.display()));
    let level = text
        .lines()
        .nth(start)
        .map_or(0, |l| l.len() - l.trim_start_matches('#').len());
    // A `# comment` in a fenced code block is no heading.
    let mut fenced = false;
    let section: Vec<&str> = text
        .lines()
        .skip(start + 1)
        .take_while(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            let hashes = l.len() - l.trim_start_matches('#').len();
            fenced || !(hashes > 0 && hashes <= level && l.chars().nth(hashes) == Some(' '))
        })
        .collect();
    let section = section.join("\n");
    let flags = help_flags(binary);
    assert!(!flags.is_empty(), "no flags found in --help of {binary:?}");
    let missing: Vec<&String> = flags
        .iter()
        .filter(|f| !section.contains(&format!("`{f}`")) && !section.contains(&format!("`{f} ")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} lists flags that the section {heading:?} of {} does not document: {missing:?}",
        binary.display(),
        doc.display()
    );
}

/// What `binary --generate KIND` wrote, after checking that it succeeded quietly.
pub fn generated(binary: &Path, kind: &str) -> String {
    let out = Command::new(binary)
        .args(["--generate", kind])
        .output()
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{kind}: {stderr}");
    assert!(stderr.is_empty(), "{kind}: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Checks the README's `--generate` command for `binary` called `name`: its man page and its
/// bash, zsh and fish completions name it, and the man page and the bash completion hold every
/// flag its `--help` lists.
pub fn assert_generates_docs(binary: &Path, name: &str) {
    let man = generated(binary, "man");
    assert!(man.contains(&format!(".TH {name} 1 ")), "{man}");
    let bash = generated(binary, "completions-bash");
    assert!(bash.contains(&format!("-o default {name}\n")), "{bash}");
    for flag in help_flags(binary) {
        let roff = format!("\\fB{}\\fR", flag.replace('-', "\\-"));
        assert!(man.contains(&roff), "the man page lacks {flag}");
        assert!(bash.contains(&format!("{flag} ")), "bash lacks {flag}");
    }
    let zsh = generated(binary, "completions-zsh");
    assert!(zsh.starts_with(&format!("#compdef {name}\n")), "{zsh}");
    let fish = generated(binary, "completions-fish");
    assert!(fish.contains(&format!("complete -c {name} ")), "{fish}");
}

/// `binary` (oai-bench) set up for the smallest run against `api_base`: one burst of one
/// synthetic request of 4 tokens, no warm-up, no progress, results to `results`, and no API key
/// from the environment. Callers add their own flags.
pub fn one_request(binary: &Path, api_base: &str, model: &str, results: &Path) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(["--model", model, "--api_base", api_base])
        .args([
            "--dataset_key",
            "synthetic",
            "--batch_sizes",
            "1",
            "--num_runs",
            "1",
        ])
        .args([
            "--warmup_runs",
            "0",
            "--max_tokens",
            "4",
            "--progress",
            "never",
        ])
        .arg("--results_file")
        .arg(results)
        .env_remove("OPENAI_API_KEY");
    cmd
}
