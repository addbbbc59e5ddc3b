//! The repository's Markdown read as GitHub and mdBook read it, so that a moved section or a
//! renamed heading cannot leave a dead link behind: every relative link names a file that exists
//! inside the repository and, with an `#anchor`, a heading of that file; the book's `SUMMARY.md`
//! lists every chapter and only chapters that exist; a chapter links no Markdown file outside the
//! book (mdBook rewrites `x.md` to `x.html`, which only exists for chapters); and the README
//! documents no flag (every flag is documented once, in the book). External (`http`, `https`,
//! `mailto`) links are not fetched. Links inside code (fenced blocks and inline spans) are text,
//! not links.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// Where the book's chapters live, relative to the repository root.
pub const BOOK_SRC: &str = "docs/src";

/// Everything wrong with the Markdown under `root` (one line each, `path:line: what`), or
/// nothing. `root` is a repository root: `README.md`, the book in [`BOOK_SRC`], and every other
/// `.md` file below it, except under `target`, hidden directories and `docs/book` (mdBook's
/// output).
pub fn problems(root: &Path) -> Vec<String> {
    let root = &normalize(root);
    let mut out = Vec::new();
    let mut files = Vec::new();
    walk(root, root, &mut files);
    files.sort();
    for file in &files {
        if let Some(lines) = read_expanded(root, file, &mut out) {
            check_links(root, file, &lines, &mut out);
        }
    }
    check_summary(root, &files, &mut out);
    check_readme_has_no_flags(root, &mut out);
    out
}

/// The anchor GitHub and mdBook give a heading: lower case, whitespace to `-`, every character
/// that is not alphanumeric, `-` or `_` dropped (after inline code marks, emphasis and link
/// targets are taken out).
pub fn slug(heading: &str) -> String {
    strip_link_targets(heading)
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c.to_lowercase().next().unwrap_or(c))
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The anchors of `text`'s headings (ATX headings outside code blocks), a repeated heading's
/// with `-1`, `-2`, … as both GitHub and mdBook number them, and any `id="…"` of inline HTML.
pub fn anchors(text: &str) -> HashSet<String> {
    anchors_of(&numbered(text))
}

fn anchors_of(lines: &Lines) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (_, line) in outside_fences(lines) {
        if let Some(title) = heading(line) {
            let base = slug(title);
            let mut id = base.clone();
            let mut n = 0;
            while seen.contains(&id) {
                n += 1;
                id = format!("{base}-{n}");
            }
            seen.insert(id);
        }
        let mut rest = line;
        while let Some(at) = rest.find("id=\"") {
            rest = &rest[at + 4..];
            if let Some(end) = rest.find('"') {
                seen.insert(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    seen
}

/// The relative (and external) link targets of one line of prose: `[text](target)` and
/// `![alt](target)`, without an optional title.
pub fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let end = rest.find([')', ' ', '\t']).unwrap_or(rest.len());
        let target = rest[..end].trim_start_matches('<').trim_end_matches('>');
        if !target.is_empty() {
            out.push(target.to_string());
        }
        rest = &rest[end..];
    }
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            let skip = name.starts_with('.')
                || name == "target"
                || path
                    .strip_prefix(root)
                    .is_ok_and(|p| p == Path::new("docs/book"));
            if !skip {
                walk(root, &path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn in_book(root: &Path, path: &Path) -> bool {
    path.starts_with(root.join(BOOK_SRC))
}

/// `file`'s lines, each with its line number (from 0), a book chapter's `{{#include PATH:ANCHOR}}`
/// replaced by what mdBook puts there (the lines between `ANCHOR: NAME` and `ANCHOR_END: NAME`,
/// or the whole file, numbered as the include line), so the included text's headings and links
/// are checked where the book shows them.
fn read_expanded(root: &Path, file: &Path, out: &mut Vec<String>) -> Option<Lines> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            out.push(format!("{}: cannot read: {e}", rel(root, file)));
            return None;
        }
    };
    if !in_book(root, file) {
        return Some(numbered(&text));
    }
    let dir = file.parent().unwrap_or(root);
    let mut expanded = Lines::new();
    for (n, line) in text.lines().enumerate() {
        let Some(spec) = line
            .trim()
            .strip_prefix("{{#include ")
            .and_then(|s| s.strip_suffix("}}"))
        else {
            expanded.push((n, line.to_string()));
            continue;
        };
        let (path, anchor) = match spec.trim().rsplit_once(':') {
            Some((p, a)) => (p, Some(a)),
            None => (spec.trim(), None),
        };
        let where_ = format!("{}:{}", rel(root, file), n + 1);
        let Ok(included) = std::fs::read_to_string(dir.join(path)) else {
            out.push(format!("{where_}: includes {path}, which does not exist"));
            continue;
        };
        let Some(anchor) = anchor else {
            expanded.extend(included.lines().map(|l| (n, l.to_string())));
            continue;
        };
        let start = format!("ANCHOR: {anchor}");
        let end = format!("ANCHOR_END: {anchor}");
        let lines: Vec<&str> = included.lines().collect();
        let from = lines.iter().position(|l| l.contains(&start));
        let to = lines.iter().position(|l| l.contains(&end));
        match (from, to) {
            (Some(a), Some(b)) if a < b => {
                expanded.extend(lines[a + 1..b].iter().map(|l| (n, l.to_string())));
            }
            _ => out.push(format!(
                "{where_}: {path} has no `{start}` … `{end}` region to include"
            )),
        }
    }
    Some(expanded)
}

fn check_links(root: &Path, file: &Path, lines: &Lines, out: &mut Vec<String>) {
    let dir = file.parent().unwrap_or(root);
    let own = anchors_of(lines);
    for (n, line) in prose_lines(lines) {
        for target in link_targets(&line) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let where_ = format!("{}:{}: link `{target}`", rel(root, file), n + 1);
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            if path.is_empty() {
                if let Some(a) = anchor {
                    if !own.contains(a) {
                        out.push(format!("{where_}: no heading here has the anchor `{a}`"));
                    }
                }
                continue;
            }
            let dest = normalize(&dir.join(path));
            if !dest.starts_with(root) {
                out.push(format!("{where_}: leads out of the repository"));
                continue;
            }
            if !dest.exists() {
                out.push(format!("{where_}: {} does not exist", rel(root, &dest)));
                continue;
            }
            let is_md = dest.extension().is_some_and(|e| e == "md");
            if in_book(root, file) && is_md && !in_book(root, &dest) {
                out.push(format!(
                    "{where_}: a Markdown file outside {BOOK_SRC}, which mdBook turns into a link to \
                     a missing .html (link its folder, or move it into the book)"
                ));
            }
            if let (Some(a), true) = (anchor, is_md) {
                // Problems of the linked file itself are reported when it is checked.
                let lines = read_expanded(root, &dest, &mut Vec::new()).unwrap_or_default();
                if !anchors_of(&lines).contains(a) {
                    out.push(format!(
                        "{where_}: no heading of {} has the anchor `{a}`",
                        rel(root, &dest)
                    ));
                }
            }
        }
    }
}

fn check_summary(root: &Path, files: &[PathBuf], out: &mut Vec<String>) {
    let src = root.join(BOOK_SRC);
    let summary = src.join("SUMMARY.md");
    let Ok(text) = std::fs::read_to_string(&summary) else {
        out.push(format!("{BOOK_SRC}/SUMMARY.md: missing"));
        return;
    };
    let listed: HashSet<PathBuf> = prose_lines(&numbered(&text))
        .flat_map(|(_, l)| link_targets(&l))
        .filter(|t| !t.contains("://"))
        .map(|t| normalize(&src.join(t.split('#').next().unwrap_or(&t))))
        .collect();
    // Entries that do not exist are reported by the link check.
    for chapter in files
        .iter()
        .filter(|f| f.starts_with(&src) && **f != summary)
    {
        if !listed.contains(chapter) {
            out.push(format!(
                "{}: a chapter that {BOOK_SRC}/SUMMARY.md does not list",
                rel(root, chapter)
            ));
        }
    }
}

fn check_readme_has_no_flags(root: &Path, out: &mut Vec<String>) {
    let Ok(text) = std::fs::read_to_string(root.join("README.md")) else {
        out.push("README.md: missing".to_string());
        return;
    };
    for (n, line) in outside_fences(&numbered(&text)) {
        if line.trim_start().starts_with("| `-") {
            out.push(format!(
                "README.md:{}: a flag table row; flags are documented once, in the book",
                n + 1
            ));
        }
    }
}

/// A file's lines, each with its line number from 0.
type Lines = Vec<(usize, String)>;

fn numbered(text: &str) -> Lines {
    text.lines().map(str::to_string).enumerate().collect()
}

/// The lines outside fenced code blocks, with inline code spans blanked out.
fn prose_lines(lines: &Lines) -> impl Iterator<Item = (usize, String)> + '_ {
    outside_fences(lines).map(|(n, line)| (n, blank_code_spans(line)))
}

/// The lines outside fenced code blocks (and not their fences).
fn outside_fences(lines: &Lines) -> impl Iterator<Item = (usize, &str)> + '_ {
    let mut fence: Option<String> = None;
    lines.iter().filter_map(move |(n, line)| {
        let (n, line) = (*n, line.as_str());
        let t = line.trim_start();
        let marker: String = t.chars().take_while(|&c| c == '`' || c == '~').collect();
        if marker.len() >= 3
            && marker
                .chars()
                .all(|c| c == marker.chars().next().unwrap_or('`'))
        {
            match &fence {
                None => fence = Some(marker),
                Some(open) if marker.starts_with(open.as_str()) => fence = None,
                Some(_) => {}
            }
            return None;
        }
        if fence.is_some() {
            return None;
        }
        Some((n, line))
    })
}

/// `line` with every inline code span (a run of backticks to the next run of the same length)
/// replaced by spaces.
fn blank_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        let mut j = i + run;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let r = chars[j..].iter().take_while(|&&c| c == '`').count();
                if r == run {
                    close = Some(j + r);
                    break;
                }
                j += r;
            } else {
                j += 1;
            }
        }
        match close {
            Some(end) => {
                out.extend(std::iter::repeat_n(' ', end - i));
                i = end;
            }
            None => {
                out.extend(&chars[i..i + run]);
                i += run;
            }
        }
    }
    out
}

/// An ATX heading's text (`## Title ##` → `Title`).
fn heading(line: &str) -> Option<&str> {
    let hashes = line.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &line[hashes..];
    if !rest.starts_with(' ') {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim_end())
}

/// `[text](target)` → `text`.
fn strip_link_targets(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("](") {
        out.push_str(&rest[..at + 1]);
        rest = &rest[at + 2..];
        rest = rest.find(')').map_or("", |e| &rest[e + 1..]);
    }
    out.push_str(rest);
    out
}

/// `a/b/../c/./d` → `a/c/d`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
