//! Which of a dataset repository's files hold a split: the `datasets` library's naming rules,
//! applied to a file listing from the Hub or from the cache.

/// The data formats read, in order of preference: Parquet first where this build reads it,
/// else last (so another format of the same split is read when there is one, and a split in
/// Parquet alone fails with a clear [`crate::Error::Unsupported`]).
#[cfg(feature = "parquet")]
const DATA_EXTENSIONS: [&str; 5] = [".parquet", ".jsonl", ".json", ".csv", ".tsv"];
#[cfg(not(feature = "parquet"))]
const DATA_EXTENSIONS: [&str; 5] = [".jsonl", ".json", ".csv", ".tsv", ".parquet"];

/// The words a path uses to name a split.
const SPLIT_NAMES: [&str; 5] = ["train", "test", "validation", "valid", "dev"];

/// The data files of `split` among a repository's files (paths relative to its root): those
/// whose path names the split as a word (`data/train-00000-of-00001.parquet`, `test.csv`,
/// `default/train/0000.parquet`), or — when no file names any split — every data file, as the
/// `train` split (the `datasets` library's rule). Files of one format only, sorted: Parquet
/// first (last in a build without the `parquet` feature), then JSON Lines, JSON, CSV, TSV.
/// Empty when the split has no data files.
pub fn split_files(files: &[String], split: &str) -> Vec<String> {
    let data: Vec<&String> = files
        .iter()
        .filter(|f| DATA_EXTENSIONS.iter().any(|e| f.ends_with(e)))
        .filter(|f| !f.starts_with('.'))
        .collect();
    let words = |f: &str| -> Vec<String> {
        f.to_ascii_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(str::to_string)
            .collect()
    };
    let names_a_split = |f: &str| words(f).iter().any(|w| SPLIT_NAMES.contains(&w.as_str()));
    let chosen: Vec<&String> = if data.iter().any(|f| names_a_split(f)) {
        let want = split.to_ascii_lowercase();
        data.into_iter()
            .filter(|f| words(f).contains(&want))
            .collect()
    } else if split == "train" {
        data
    } else {
        Vec::new()
    };
    for ext in DATA_EXTENSIONS {
        let mut of_ext: Vec<String> = chosen
            .iter()
            .filter(|f| f.ends_with(ext))
            .map(|f| f.to_string())
            .collect();
        if !of_ext.is_empty() {
            of_ext.sort();
            return of_ext;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn files_of_a_split() {
        let f = names(&[
            "README.md",
            ".gitattributes",
            "data/train-00000-of-00002.parquet",
            "data/train-00001-of-00002.parquet",
            "data/test-00000-of-00001.parquet",
            "data/train.csv",
        ]);
        let train = split_files(&f, "train");
        if cfg!(feature = "parquet") {
            assert_eq!(
                train,
                names(&[
                    "data/train-00000-of-00002.parquet",
                    "data/train-00001-of-00002.parquet"
                ])
            );
        } else {
            // Without Parquet support, the split's CSV is read instead.
            assert_eq!(train, names(&["data/train.csv"]));
        }
        assert_eq!(
            split_files(&f, "test"),
            names(&["data/test-00000-of-00001.parquet"])
        );
        assert!(split_files(&f, "validation").is_empty());
        // No split named anywhere: everything is train.
        let g = names(&["README.md", "AIME_Dataset_1983_2024.csv"]);
        assert_eq!(
            split_files(&g, "train"),
            names(&["AIME_Dataset_1983_2024.csv"])
        );
        assert!(split_files(&g, "test").is_empty());
        // The Hub's Parquet conversion layout.
        let p = names(&["default/train/0000.parquet", "default/test/0000.parquet"]);
        assert_eq!(
            split_files(&p, "train"),
            names(&["default/train/0000.parquet"])
        );
        // "trainer.csv" does not name the train split.
        assert!(split_files(&names(&["trainer.csv", "test.csv"]), "train").is_empty());
    }
}
