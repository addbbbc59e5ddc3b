//! Reading a dataset's data files (CSV, TSV, JSON, JSON Lines, Parquet) as records, and turning
//! the records of a split into prompts: which column, and what a cell means.

use std::path::Path;

use serde_json::{Map, Value};

use crate::{Error, Prompt, Result, Turn};

/// One row of a data file: column name → cell.
type Record = Map<String, Value>;

/// The records of one data file, as JSON objects, in file order. The format follows the file's
/// name: `.parquet`, `.csv`, `.tsv`, else JSON (an array of records, `{"data": [...]}`, or JSON
/// Lines). CSV and TSV cells are strings. A file that cannot be read is [`Error::Read`]; one
/// that is not in its format is [`Error::Malformed`] or [`Error::Format`] (with the line);
/// Parquet in a build without the `parquet` feature is [`Error::Unsupported`].
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".parquet") {
        read_parquet(path)
    } else if name.ends_with(".csv") || name.ends_with(".tsv") {
        read_csv(path, if name.ends_with(".tsv") { b'\t' } else { b',' })
    } else {
        read_json(path)
    }
}

fn read_error(path: &Path, source: std::io::Error) -> Error {
    Error::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn malformed(path: &Path, message: String) -> Error {
    Error::Malformed {
        path: path.to_path_buf(),
        message,
    }
}

fn read_csv(path: &Path, delimiter: u8) -> Result<Vec<Record>> {
    // I/O trouble is a read error, anything else a malformed file.
    let csv_error = |e: csv::Error, at: String| {
        let message = format!("{at}{e}");
        match e.into_kind() {
            csv::ErrorKind::Io(io) => read_error(path, io),
            _ => malformed(path, message),
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(path)
        .map_err(|e| csv_error(e, String::new()))?;
    let headers = reader
        .headers()
        .map_err(|e| csv_error(e, "header: ".into()))?
        .clone();
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| csv_error(e, format!("record {}: ", i + 1)))?;
        let mut m = Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            m.insert(h.to_string(), Value::String(v.to_string()));
        }
        out.push(m);
    }
    Ok(out)
}

fn read_json(path: &Path) -> Result<Vec<Record>> {
    let text = std::fs::read_to_string(path).map_err(|e| read_error(path, e))?;
    let objects = |v: Vec<Value>| -> Result<Vec<Record>> {
        v.into_iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::Object(m) => Ok(m),
                _ => Err(malformed(
                    path,
                    format!("record {} is not an object", i + 1),
                )),
            })
            .collect()
    };
    // A JSON document (an array of records, or {"data": [...]}) …
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => return objects(items),
        Ok(Value::Object(mut m)) if m.get("data").is_some_and(Value::is_array) => {
            if let Some(Value::Array(items)) = m.remove("data") {
                return objects(items);
            }
        }
        _ => {}
    }
    // … or JSON Lines.
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let format_err = |message: String| Error::Format {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => out.push(m),
            Ok(_) => return Err(format_err("not a JSON object".into())),
            Err(e) => return Err(format_err(e.to_string())),
        }
    }
    Ok(out)
}

#[cfg(feature = "parquet")]
fn read_parquet(path: &Path) -> Result<Vec<Record>> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| malformed(path, format!("not Parquet: {e}")))?;
    let mut out = Vec::new();
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| malformed(path, e.to_string()))?;
    for (i, row) in rows.enumerate() {
        let row = row.map_err(|e| malformed(path, format!("row {i}: {e}")))?;
        match row.to_json_value() {
            Value::Object(m) => out.push(m),
            _ => return Err(malformed(path, format!("row {i} is not a record"))),
        }
    }
    Ok(out)
}

#[cfg(not(feature = "parquet"))]
fn read_parquet(_path: &Path) -> Result<Vec<Record>> {
    Err(Error::Unsupported(crate::Feature::Parquet))
}

/// The column to take prompts from when none is named: a chat `messages` (or `conversations`)
/// column, else the first of the usual names for a prompt (`prompt`, `question`, `problem`,
/// `instruction`, `input`, `text`, `content`), matched without regard to case. `None` when no
/// column has one of these names.
pub fn pick_column(columns: &[String]) -> Option<String> {
    const NAMES: [&str; 9] = [
        "messages",
        "conversations",
        "prompt",
        "question",
        "problem",
        "instruction",
        "input",
        "text",
        "content",
    ];
    NAMES
        .iter()
        .find_map(|n| columns.iter().find(|c| c.eq_ignore_ascii_case(n)).cloned())
}

/// The prompts of a split's records, in order, and the column they came from: `column`, or the
/// one [`pick_column`] finds among the first record's columns. Every cell must be a string
/// (a text prompt) or a list of `{role, content}` / `{from, value}` messages (a conversation;
/// `human` and `gpt` become `user` and `assistant`). `dataset` names the data in errors
/// (`OWNER/NAME, split "train"`). No records is [`Error::Empty`]; a missing or unusable column
/// is [`Error::DatasetColumn`].
pub fn prompts_from_records(
    records: &[Record],
    column: Option<&str>,
    dataset: &str,
) -> Result<(String, Vec<Prompt>)> {
    let Some(first) = records.first() else {
        return Err(Error::Empty(dataset.to_string()));
    };
    let column_err = |message: String| Error::DatasetColumn {
        dataset: dataset.to_string(),
        message,
    };
    let columns: Vec<String> = first.keys().cloned().collect();
    let column = match column {
        Some(c) => c.to_string(),
        None => pick_column(&columns).ok_or_else(|| {
            column_err(format!(
                "no prompt column found; name one with --dataset_column (columns: {})",
                columns.join(", ")
            ))
        })?,
    };
    if !columns.contains(&column) {
        return Err(column_err(format!(
            "no column {column:?} (columns: {})",
            columns.join(", ")
        )));
    }
    let rows = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            prompt_of(r.get(&column)).ok_or_else(|| {
                column_err(format!(
                    "row {i}: column {column:?} is neither text nor a list of chat messages"
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((column, rows))
}

/// A cell as a prompt: a string, or a list of `{role, content}` (or `{from, value}`) messages.
fn prompt_of(v: Option<&Value>) -> Option<Prompt> {
    match v? {
        Value::String(s) => Some(Prompt::Text(s.clone())),
        Value::Array(items) if !items.is_empty() => {
            let turns: Option<Vec<Turn>> = items
                .iter()
                .map(|m| {
                    let role = m.get("role").or_else(|| m.get("from"))?.as_str()?;
                    let content = m.get("content").or_else(|| m.get("value"))?.as_str()?;
                    let role = match role {
                        "human" => "user",
                        "gpt" => "assistant",
                        r => r,
                    };
                    Some(Turn {
                        role: role.to_string(),
                        content: content.to_string(),
                    })
                })
                .collect();
            turns.map(Prompt::Messages)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_prompt_column_is_found() {
        assert_eq!(
            pick_column(&names(&["ID", "Year", "Question", "Answer"])).as_deref(),
            Some("Question")
        );
        assert_eq!(
            pick_column(&names(&["id", "messages", "prompt"])).as_deref(),
            Some("messages")
        );
        assert_eq!(pick_column(&names(&["a", "b"])), None);
    }

    #[test]
    fn chat_cells_become_conversations() {
        let v = json!([{"from": "human", "value": "hi"}, {"role": "assistant", "content": "yo"}]);
        assert_eq!(
            prompt_of(Some(&v)),
            Some(Prompt::Messages(vec![
                Turn {
                    role: "user".into(),
                    content: "hi".into()
                },
                Turn {
                    role: "assistant".into(),
                    content: "yo".into()
                }
            ]))
        );
        assert_eq!(prompt_of(Some(&json!(3))), None);
    }

    fn record(v: Value) -> Record {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("an object literal"),
        }
    }

    #[test]
    fn records_become_prompts_or_say_why_not() {
        let recs = vec![
            record(json!({"id": 1, "Question": "q1"})),
            record(json!({"id": 2, "Question": "q2"})),
        ];
        let (column, rows) = prompts_from_records(&recs, None, "a/b").unwrap();
        assert_eq!(column, "Question");
        assert_eq!(rows, [Prompt::Text("q1".into()), Prompt::Text("q2".into())]);
        let e = prompts_from_records(&recs, Some("id"), "a/b").unwrap_err();
        assert!(matches!(e, Error::DatasetColumn { .. }) && e.is_bad_input());
        assert!(e.to_string().contains("row 0: column \"id\""), "{e}");
        let e = prompts_from_records(&recs, Some("Nope"), "a/b").unwrap_err();
        assert!(
            e.to_string().contains("\"Nope\" (columns: id, Question)"),
            "{e}"
        );
        assert!(matches!(
            prompts_from_records(&[], None, "a/b"),
            Err(Error::Empty(_))
        ));
    }

    #[test]
    fn files_are_read_by_format_and_errors_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("d.csv");
        std::fs::write(&csv, "a,b\n1,\"x, y\"\n").unwrap();
        assert_eq!(
            read_records(&csv).unwrap(),
            [record(json!({"a": "1", "b": "x, y"}))]
        );
        let tsv = dir.path().join("d.tsv");
        std::fs::write(&tsv, "a\tb\n1\tx, y\n").unwrap();
        assert_eq!(read_records(&tsv).unwrap()[0]["b"], "x, y");
        let json = dir.path().join("d.json");
        std::fs::write(&json, r#"{"data": [{"p": "x"}]}"#).unwrap();
        assert_eq!(read_records(&json).unwrap()[0]["p"], "x");
        std::fs::write(&json, r#"[{"p": "x"}, 3]"#).unwrap();
        let e = read_records(&json).unwrap_err();
        assert!(matches!(e, Error::Malformed { .. }), "{e}");
        assert!(e.to_string().contains("record 2 is not an object"), "{e}");
        let jsonl = dir.path().join("d.jsonl");
        std::fs::write(&jsonl, "{\"p\": \"x\"}\n\n{oops\n").unwrap();
        let e = read_records(&jsonl).unwrap_err();
        assert!(matches!(e, Error::Format { line: 3, .. }), "{e}");
        assert!(e.is_bad_input());
        let e = read_records(&dir.path().join("missing.csv")).unwrap_err();
        assert!(matches!(e, Error::Read { .. }) && e.is_bad_input(), "{e}");
        let parquet = dir.path().join("d.parquet");
        std::fs::write(&parquet, "not parquet at all").unwrap();
        let e = read_records(&parquet).unwrap_err();
        if cfg!(feature = "parquet") {
            assert!(e.to_string().contains("not Parquet"), "{e}");
        } else {
            assert!(matches!(e, Error::Unsupported(crate::Feature::Parquet)));
        }
    }
}
