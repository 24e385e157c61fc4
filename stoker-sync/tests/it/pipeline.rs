//! The pipeline asks the source what changed since the revision the live directory was last
//! synced to, and a failed diff only means "compare everything".

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use stoker_core::{
    Artifact, LocalSource, Mapping, Profile, Result, Revision, Source, TemplateContext,
};
use stoker_sync::pipeline::{Pipeline, SyncJob};

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// A local directory per revision name; records the diffs it is asked for.
struct Recording {
    repos: std::path::PathBuf,
    asked: Mutex<Vec<(String, String)>>,
    fail: bool,
}

// What `#[async_trait]` generates, written out (this crate does not depend on async-trait).
impl Source for Recording {
    fn kind(&self) -> &'static str {
        "recording"
    }

    fn resolve<'s, 'r, 'a>(&'s self, reference: &'r str) -> Boxed<'a, Revision>
    where
        's: 'a,
        'r: 'a,
        Self: 'a,
    {
        Box::pin(async move { Ok(Revision::new(reference)) })
    }

    fn fetch<'s, 'r, 'a>(&'s self, revision: &'r Revision) -> Boxed<'a, Arc<dyn Artifact>>
    where
        's: 'a,
        'r: 'a,
        Self: 'a,
    {
        Box::pin(async move {
            let dir = self.repos.join(&revision.id);
            let artifact: Arc<dyn Artifact> =
                Arc::new(LocalSource::new(dir).artifact(revision.clone()));
            Ok(artifact)
        })
    }

    fn changed_paths<'s, 'f, 't, 'a>(
        &'s self,
        from: &'f Revision,
        to: &'t Revision,
    ) -> Boxed<'a, Option<Vec<String>>>
    where
        's: 'a,
        'f: 'a,
        't: 'a,
        Self: 'a,
    {
        Box::pin(async move {
            self.asked
                .lock()
                .unwrap()
                .push((from.id.clone(), to.id.clone()));
            if self.fail {
                return Err(stoker_core::Error::NotFound {
                    path: "(diff)".into(),
                    revision: from.id.clone(),
                });
            }
            Ok(Some(vec!["a.json".to_owned()]))
        })
    }
}

fn setup(fail: bool) -> (tempfile::TempDir, Arc<Recording>) {
    let dir = tempfile::tempdir().unwrap();
    for (revision, content) in [("r1", "1"), ("r2", "2")] {
        let repo = dir.path().join("repos").join(revision);
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::write(repo.join("a.json"), content).unwrap();
        std::fs::write(repo.join("b.json"), "same").unwrap();
    }
    let source = Arc::new(Recording {
        repos: dir.path().join("repos"),
        asked: Mutex::new(Vec::new()),
        fail,
    });
    (dir, source)
}

fn job(reference: &str, live: &std::path::Path) -> SyncJob {
    SyncJob {
        reference: reference.into(),
        profile: Profile::new(
            "p",
            vec![Mapping {
                source: ".".into(),
                destination: "data".into(),
                ..Default::default()
            }],
        ),
        context: TemplateContext::default(),
        live: live.to_path_buf(),
        dry_run: false,
    }
}

#[tokio::test]
async fn the_source_is_asked_what_changed_since_the_last_synced_revision() {
    let _no_fork = crate::common::no_fork();
    let (dir, source) = setup(false);
    let live = dir.path().join("live");
    let pipeline = Pipeline::new(source.clone());
    pipeline.run(job("r1", &live)).await.unwrap();
    assert!(
        source.asked.lock().unwrap().is_empty(),
        "nothing synced before"
    );
    let report = pipeline.run(job("r2", &live)).await.unwrap().report;
    assert_eq!(report.modified[0].path, "data/a.json");
    assert_eq!(report.unchanged, 1);
    // The same revision again: nothing to diff.
    pipeline.run(job("r2", &live)).await.unwrap();
    assert_eq!(
        *source.asked.lock().unwrap(),
        [("r1".to_owned(), "r2".to_owned())]
    );
}

#[tokio::test]
async fn a_failed_diff_means_a_full_plan_not_a_failed_sync() {
    let _no_fork = crate::common::no_fork();
    let (dir, source) = setup(true);
    let live = dir.path().join("live");
    let pipeline = Pipeline::new(source.clone());
    pipeline.run(job("r1", &live)).await.unwrap();
    std::fs::write(live.join("data/b.json"), "drifted").unwrap();
    let report = pipeline.run(job("r2", &live)).await.unwrap().report;
    assert_eq!(source.asked.lock().unwrap().len(), 1);
    let modified: Vec<&str> = report.modified.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(modified, ["data/a.json", "data/b.json"]);
    assert_eq!(std::fs::read(live.join("data/b.json")).unwrap(), b"same");
}
