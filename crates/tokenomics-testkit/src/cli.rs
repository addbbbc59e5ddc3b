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
