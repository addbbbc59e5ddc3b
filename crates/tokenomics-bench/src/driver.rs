//! The one level loop of every benchmark.
//!
//! For each level: stop if a shutdown was asked for; warm up; run the level's runs (each stops
//! early on a shutdown); pool them into the level's result; mark level and document incomplete if
//! the runs were cut short; keep the level if any request finished; write the document, atomically.
//! After the last level, a shutdown that came between levels still marks the document
//! incomplete. What differs between the chat and the embedding benchmark — what a run sends and
//! how its records are pooled — is the [`Workload`].

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokenomics_stats::{write_json_atomic, ChatDocument, ChatLevel, EmbedDocument, EmbedLevel};

use crate::shutdown::Shutdown;
use crate::{Observer, Result};

/// A result document the loop fills level by level.
pub(crate) trait Document: Serialize + Clone {
    type Level;
    fn insert(&mut self, key: String, level: Self::Level);
    fn mark_incomplete(&mut self);
}

/// A level's result.
pub(crate) trait LevelResult {
    /// Whether any request finished (an interrupted level with none has nothing to report).
    fn measured_any(&self) -> bool;
    fn mark_incomplete(&mut self);
}

/// What a benchmark runs at each level.
pub(crate) trait Workload: Send {
    /// What defines a level.
    type Spec: Send + Sync;
    /// The runs of a level so far.
    type Acc: Send;
    type Level: LevelResult + Send + Sync;
    type Doc: Document<Level = Self::Level> + Send + Sync;

    /// The level's key in `results`.
    fn key(&self, spec: &Self::Spec) -> String;
    /// Requests before the level's measured runs, not recorded.
    async fn warm_up(&mut self, spec: &Self::Spec, observer: &mut dyn Observer);
    /// The level starts (after its warm-up).
    fn begin(&mut self, spec: &Self::Spec, observer: &mut dyn Observer) -> Self::Acc;
    /// One measured run; `false` when it was cut short by an interruption. A run that lasts
    /// calls `checkpoint` as requests finish (it decides when a snapshot is due).
    async fn run(
        &mut self,
        spec: &Self::Spec,
        run: usize,
        acc: &mut Self::Acc,
        observer: &mut dyn Observer,
        checkpoint: &mut (dyn FnMut(&Self::Acc) + Send),
    ) -> bool;
    /// The level so far, for a snapshot (`None`: this workload takes none).
    fn snapshot(_acc: &Self::Acc) -> Option<Self::Level> {
        None
    }
    /// The level's result from its runs.
    fn finish(&mut self, acc: Self::Acc) -> Self::Level;
    /// The level is complete and kept.
    fn level_finished(&mut self, key: &str, level: &Self::Level, observer: &mut dyn Observer);
    /// Brings the document up to date after a level (e.g. what the first responses taught).
    fn annotate(&self, _doc: &mut Self::Doc) {}
}

/// Where the levels come from: a list fixed up front, or an experiment that decides each next
/// level from the ones before ([`crate::adaptive`]).
pub(crate) trait LevelSource<S, L, D>: Send {
    /// The next level (`None`: done).
    fn next_level(&mut self) -> Option<S>;
    /// A level ended: its result (`None` when nothing was measured), before it joins the
    /// document. Returns what the source decided, for people (`None`: nothing to say).
    fn ended(&mut self, _spec: &S, _key: &str, _level: Option<&L>) -> Option<String> {
        None
    }
    /// Brings the document up to date after a level (what the experiment decided so far).
    fn annotate(&self, _doc: &mut D) {}
}

/// The levels of a list, in order.
pub(crate) struct FixedLevels<S>(pub std::vec::IntoIter<S>);

impl<S: Send, L, D> LevelSource<S, L, D> for FixedLevels<S> {
    fn next_level(&mut self) -> Option<S> {
        self.0.next()
    }
}

/// How the loop runs the levels.
pub(crate) struct Settings<'a> {
    pub num_runs: u64,
    pub shutdown: &'a Shutdown,
    /// Written after every level, and at every snapshot.
    pub results_file: Option<&'a Path>,
    /// Rewrite the results file this often with the level in progress (marked incomplete).
    pub snapshot_every: Option<Duration>,
}

/// Runs every level `specs` gives and fills `doc`, written to `results_file` after each level.
/// Returns whether the run was interrupted.
pub(crate) async fn run_levels<W: Workload>(
    workload: &mut W,
    specs: &mut dyn LevelSource<W::Spec, W::Level, W::Doc>,
    doc: &mut W::Doc,
    settings: Settings<'_>,
    observer: &mut dyn Observer,
) -> Result<bool> {
    let Settings {
        num_runs,
        shutdown,
        results_file,
        snapshot_every,
    } = settings;
    let mut interrupted = false;
    let save = |doc: &W::Doc, observer: &mut dyn Observer| -> Result<()> {
        if let Some(path) = results_file {
            write_json_atomic(path, doc)?;
            observer.saved(path);
        }
        Ok(())
    };
    while let Some(spec) = specs.next_level() {
        if shutdown.is_stopping() {
            break;
        }
        let key = workload.key(&spec);
        workload.warm_up(&spec, observer).await;
        let mut acc = workload.begin(&spec, observer);
        let mut complete = true;
        let mut last_snapshot = Instant::now();
        for run in 0..num_runs as usize {
            if shutdown.is_stopping() {
                complete = false;
                break;
            }
            // The document as it would be if the run stopped now: the levels done, this one
            // so far (marked incomplete). Written atomically: a kill at any moment leaves it.
            let snapshot_doc = &*doc;
            let mut checkpoint = |acc: &W::Acc| {
                let (Some(every), Some(path)) = (snapshot_every, results_file) else {
                    return;
                };
                if last_snapshot.elapsed() < every {
                    return;
                }
                last_snapshot = Instant::now();
                if let Some(mut level) = W::snapshot(acc) {
                    level.mark_incomplete();
                    let mut snap = snapshot_doc.clone();
                    snap.insert(key.clone(), level);
                    snap.mark_incomplete();
                    // A failed snapshot is not fatal: the level is written again when it ends.
                    let _ = write_json_atomic(path, &snap);
                }
            };
            complete &= workload
                .run(&spec, run, &mut acc, observer, &mut checkpoint)
                .await;
        }
        let mut level = workload.finish(acc);
        if !complete {
            interrupted = true;
            level.mark_incomplete();
            doc.mark_incomplete();
        }
        let measured = level.measured_any();
        // A level cut short by an interruption measured too little to decide anything on.
        let step = if complete {
            specs.ended(&spec, &key, measured.then_some(&level))
        } else {
            None
        };
        if measured {
            workload.level_finished(&key, &level, observer);
            doc.insert(key, level);
        }
        if let Some(text) = step {
            observer.experiment_step(&text);
        }
        workload.annotate(doc);
        specs.annotate(doc);
        save(doc, observer)?;
    }
    if shutdown.is_stopping() && !interrupted {
        // Stopped between levels: every level written is whole, but not every level ran.
        interrupted = true;
        doc.mark_incomplete();
        save(doc, observer)?;
    }
    Ok(interrupted)
}

impl Document for ChatDocument {
    type Level = ChatLevel;
    fn insert(&mut self, key: String, level: ChatLevel) {
        self.results.insert(key, level);
    }
    fn mark_incomplete(&mut self) {
        self.metadata.incomplete = true;
    }
}

impl LevelResult for ChatLevel {
    fn measured_any(&self) -> bool {
        self.requests
            .as_ref()
            .is_some_and(|c| c.succeeded + c.failed > 0)
    }
    fn mark_incomplete(&mut self) {
        self.incomplete = true;
    }
}

impl Document for EmbedDocument {
    type Level = EmbedLevel;
    fn insert(&mut self, key: String, level: EmbedLevel) {
        self.results.insert(key, level);
    }
    fn mark_incomplete(&mut self) {
        self.metadata.incomplete = true;
    }
}

impl LevelResult for EmbedLevel {
    fn measured_any(&self) -> bool {
        self.requests
            .as_ref()
            .is_some_and(|c| c.succeeded + c.failed > 0)
    }
    fn mark_incomplete(&mut self) {
        self.incomplete = true;
    }
}
