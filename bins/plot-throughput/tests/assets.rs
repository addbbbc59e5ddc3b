//! The result files in `assets/` (which `assets/regenerate.sh` writes with the current binaries)
//! still load as typed documents and still plot.

use std::path::Path;
use std::process::Command;

#[test]
fn every_asset_loads_and_plots() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets");
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(&assets).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let doc = tokenomics_stats::AnyDocument::from_value(value)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let tool = match &doc {
            tokenomics_stats::AnyDocument::Chat(d) => d.metadata.tool.clone(),
            tokenomics_stats::AnyDocument::Embed(d) => d.metadata.tool.clone(),
        };
        assert!(
            tool.is_some_and(|t| t.starts_with("tokenomics ")),
            "{} was written by this tool",
            path.display()
        );
        let out = dir.path().join("x.png");
        let o = Command::new(env!("CARGO_BIN_EXE_plot-throughput"))
            .arg(&path)
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(std::fs::metadata(&out).unwrap().len() > 10_000);
        n += 1;
    }
    assert!(n >= 3, "{n} result files in assets/");
}
