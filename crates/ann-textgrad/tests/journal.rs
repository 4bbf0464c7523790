//! A resumed run refuses a journal whose checkpointed part was changed, naming the first bad line.

mod common;

use std::sync::Arc;

use ann_textgrad::{TrainConfig, TrainError, Trainer};
use common::{data, network, objective, scripted};

#[tokio::test]
async fn a_resume_names_the_first_changed_journal_line() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = || {
        let config = TrainConfig { epochs: 1, batch_size: 2, seed: 7, ..TrainConfig::default() };
        Trainer::new(Arc::new(scripted("worker")), Arc::new(scripted("optimizer")), objective(), config)
    };
    let done = trainer().train(&network(), &data(), dir.path()).await.unwrap();
    // A finished run resumes to the same outcome while its journal is intact.
    assert_eq!(trainer().train(&network(), &data(), dir.path()).await.unwrap(), done);

    let path = dir.path().join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let second = text.lines().nth(1).expect("a step line after the start line");
    let changed = second.replacen("\"epoch\":0", "\"epoch\":9", 1);
    assert_ne!(changed, second, "the step line names its epoch");
    std::fs::write(&path, text.replacen(second, &changed, 1)).unwrap();

    let err = trainer().train(&network(), &data(), dir.path()).await.unwrap_err();
    assert!(matches!(err, TrainError::Checkpoint { .. }), "{err:?}");
    assert!(err.to_string().contains("journal.jsonl line 2 is not what was written"), "{err}");
}
