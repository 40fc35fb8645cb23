//! What every trainer does with a folder: starts over only in one a Timbrel run made,
//! clearing only a run's files.

use candle_core::Device;
use engine::fsutil::Overwrite;
use engine::train::Trainer;

use crate::setup::*;

/// `--force` starts over only in a folder a Timbrel run made, clearing only a run's files;
/// a folder with run files of someone else's is refused (with every trainer) and kept.
#[test]
fn force_starts_over_only_in_a_folder_timbrel_made_and_keeps_the_users_files() {
    use autoencoder::samplernn::SampleRnnConfig;
    use engine::train::samplernn::SampleRnnTrainer;
    use engine::train::student::StudentTrainer;
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());

    // The user's folder: a config.json and a student.json of theirs, and a train/ folder.
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir_all(theirs.join("train")).unwrap();
    for name in ["config.json", "student.json", "train/notes.txt"] {
        std::fs::write(theirs.join(name), b"the user's own").unwrap();
    }
    let refused = |err: engine::Error| {
        assert!(
            matches!(err, engine::Error::NotCreatedByTimbrel { .. }),
            "{err}"
        );
    };
    let opts = || options(&data, 1);
    refused(
        Trainer::start(
            &theirs,
            &tiny_config(),
            opts(),
            &Device::Cpu,
            Overwrite::Allowed,
        )
        .unwrap_err(),
    );
    refused(
        StudentTrainer::start(
            &theirs,
            &tiny_student(vec![2]),
            opts(),
            &Device::Cpu,
            Overwrite::Allowed,
        )
        .unwrap_err(),
    );
    refused(
        SampleRnnTrainer::start(
            &theirs,
            &SampleRnnConfig::tiny(),
            opts(),
            &Device::Cpu,
            Overwrite::Allowed,
        )
        .unwrap_err(),
    );
    // Only train/ of theirs (no config): refused too, even without --force.
    let only_state = tmp.path().join("only-state");
    std::fs::create_dir_all(only_state.join("train")).unwrap();
    std::fs::write(only_state.join("train/notes.txt"), b"mine").unwrap();
    refused(
        Trainer::start(
            &only_state,
            &tiny_config(),
            opts(),
            &Device::Cpu,
            Overwrite::Never,
        )
        .unwrap_err(),
    );
    for name in ["config.json", "student.json", "train/notes.txt"] {
        assert_eq!(std::fs::read(theirs.join(name)).unwrap(), b"the user's own");
    }
    assert!(only_state.join("train/notes.txt").exists());

    // A run's own folder, with the user's files put beside its own: starting over clears
    // the run's files and keeps theirs.
    let ours = tmp.path().join("ours");
    run_to_end(&mut start_wavenet(&ours, &tiny_config(), opts()));
    assert!(ours.join("train/state.json").exists());
    std::fs::write(ours.join("train/mine.txt"), b"keep").unwrap();
    std::fs::write(ours.join("README.md"), b"keep").unwrap();
    Trainer::start(
        &ours,
        &tiny_config(),
        opts(),
        &Device::Cpu,
        Overwrite::Allowed,
    )
    .unwrap();
    assert!(!ours.join("train/state.json").exists());
    assert!(!ours.join("weights.safetensors").exists());
    assert!(!ours.join("train_log.jsonl").exists());
    assert!(
        ours.join(format!("train/{}", engine::train::MARKER_FILE))
            .exists()
    );
    assert_eq!(std::fs::read(ours.join("train/mine.txt")).unwrap(), b"keep");
    assert_eq!(std::fs::read(ours.join("README.md")).unwrap(), b"keep");
}
