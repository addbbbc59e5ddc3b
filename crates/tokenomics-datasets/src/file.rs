//! `file:PATH` prompt sets: JSON Lines (`{"prompt": "…"}` or `{"messages": [...]}` per line) or
//! plain text, one prompt per line. A file whose first non-blank line starts with `{` is JSON Lines.

use std::path::Path;

use crate::{Error, Prompt, Result, Turn};

pub(crate) fn load(path: &Path) -> Result<Vec<Prompt>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let jsonl = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_start().starts_with('{'));
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !jsonl {
            rows.push(Prompt::Text(line.to_string()));
            continue;
        }
        let format_err = |message: String| Error::Format {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        #[derive(serde::Deserialize)]
        struct Row {
            prompt: Option<String>,
            messages: Option<Vec<Turn>>,
        }
        let row: Row = serde_json::from_str(line)
            .map_err(|e| format_err(format!("not a JSON object: {e}")))?;
        rows.push(match (row.prompt, row.messages) {
            (Some(p), _) => Prompt::Text(p),
            (None, Some(m)) if !m.is_empty() => Prompt::Messages(m),
            _ => {
                return Err(format_err(
                    "expected a \"prompt\" string or a \"messages\" array".into(),
                ))
            }
        });
    }
    if rows.is_empty() {
        return Err(Error::Empty(path.display().to_string()));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_plain_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        std::fs::write(&p, "{\"prompt\": \"one\"}\n\n{\"messages\": [{\"role\": \"user\", \"content\": \"two\"}]}\n").unwrap();
        let rows = load(&p).unwrap();
        assert_eq!(rows[0], Prompt::Text("one".into()));
        assert_eq!(
            rows[1],
            Prompt::Messages(vec![Turn {
                role: "user".into(),
                content: "two".into()
            }])
        );

        std::fs::write(&p, "first prompt\nsecond prompt\n").unwrap();
        assert_eq!(load(&p).unwrap().len(), 2);

        std::fs::write(&p, "{\"prompt\": \"ok\"}\n{\"other\": 1}\n").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("\"prompt\""), "{e}");

        std::fs::write(&p, "\n\n").unwrap();
        assert!(matches!(load(&p), Err(Error::Empty(_))));
        assert!(matches!(
            load(&dir.path().join("missing")),
            Err(Error::Read { .. })
        ));
    }
}
