//! `oai-bench --generate KIND`: the bash, zsh and fish completions and the man page the README's
//! command writes, each naming `oai-bench` and every flag `--help` lists; a KIND it does not know
//! is refused in one line, exit 2, with nothing on stdout.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_oai-bench");

fn generate(kind: &str) -> Output {
    Command::new(BIN)
        .args(["--generate", kind])
        .output()
        .expect("run oai-bench")
}

/// What `--generate KIND` wrote, after checking that it succeeded quietly.
fn generated(kind: &str) -> String {
    let out = generate(kind);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{kind}: {stderr}");
    assert!(stderr.is_empty(), "{kind}: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The long flags `--help` lists (`--max_tokens`, …), help and version left out.
fn flags() -> Vec<String> {
    let flags = tokenomics_testkit::cli::help_flags(Path::new(BIN));
    assert!(flags.len() > 20, "{flags:?}");
    flags
}

#[test]
fn the_man_page_names_oai_bench_and_every_flag() {
    let man = generated("man");
    assert!(man.contains(".TH oai-bench 1 "), "{man}");
    assert!(man.contains("\\-\\-max_tokens"), "{man}");
    assert!(
        man.contains("OPENAI_API_KEY"),
        "the env variable a flag reads: {man}"
    );
    for flag in flags() {
        let roff = format!("\\fB{}\\fR", flag.replace('-', "\\-"));
        assert!(man.contains(&roff), "the man page lacks {flag}");
    }
}

#[test]
fn bash_completes_every_flag() {
    let bash = generated("completions-bash");
    assert!(bash.contains("--request_rate"), "{bash}");
    assert!(bash.contains("-o default oai-bench\n"), "{bash}");
    for flag in flags() {
        assert!(bash.contains(&format!("{flag} ")), "bash lacks {flag}");
    }
}

#[test]
fn zsh_completes_every_flag() {
    let zsh = generated("completions-zsh");
    assert!(zsh.starts_with("#compdef oai-bench\n"), "{zsh}");
    for flag in flags() {
        // `'--flag=[help]…'` for a flag with a value, `'--flag[help]'` for a switch, after the
        // flags it conflicts with in parentheses.
        let with_value = format!("{flag}=[");
        let switch = format!("{flag}[");
        assert!(
            zsh.contains(&with_value) || zsh.contains(&switch),
            "zsh lacks {flag}"
        );
    }
}

#[test]
fn fish_completes_every_flag() {
    let fish = generated("completions-fish");
    assert!(fish.contains("complete -c oai-bench "), "{fish}");
    for flag in flags() {
        let long = format!("-l {} ", flag.trim_start_matches("--"));
        assert!(fish.contains(&long), "fish lacks {flag}");
    }
}

#[test]
fn an_unknown_kind_is_refused_in_one_line() {
    let out = generate("completions-powershell");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("oai-bench: error: "), "{stderr}");
    assert!(
        stderr.contains("completions-bash, completions-zsh, completions-fish, man"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// The README's command writes all four files for every binary that parses its flags through
/// `tokenomics_cli::parse` (which is what answers `--generate`), so a new binary is not forgotten.
#[test]
fn the_readme_command_covers_every_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read the README");
    let at = readme
        .find("### Shell completions and man pages")
        .expect("the README's section");
    let section = &readme[at..];
    let mut listed: Vec<&str> = section
        .lines()
        .find_map(|l| l.strip_prefix("for b in ")?.strip_suffix("; do"))
        .expect("the README's loop over the binaries")
        .split_whitespace()
        .collect();
    listed.sort_unstable();
    let mut parsing: Vec<String> = std::fs::read_dir(root.join("bins"))
        .expect("list bins/")
        .filter_map(|e| {
            let dir = e.ok()?.path();
            let main = std::fs::read_to_string(dir.join("src/main.rs")).ok()?;
            main.contains("cli::parse(NAME)")
                .then(|| dir.file_name()?.to_str().map(str::to_string))?
        })
        .collect();
    parsing.sort_unstable();
    assert!(parsing.iter().any(|b| b == "oai-bench"), "{parsing:?}");
    assert_eq!(listed, parsing);
    for kind in [
        "completions-bash",
        "completions-zsh",
        "completions-fish",
        "man",
    ] {
        let command = format!("target/release/$b --generate {kind} > ");
        assert!(
            section.contains(&command),
            "the README does not run {command}"
        );
    }
}
