//! The SampleRNN's run: it trains, checks itself free-running and resumes exactly.

use candle_core::Device;
use engine::train::Trainer;

use crate::setup::*;

#[test]
fn a_samplernn_resumes_exactly() {
    use autoencoder::samplernn::SampleRnnConfig;
    use engine::train::samplernn::SampleRnnTrainer;
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let cfg = SampleRnnConfig::tiny();
    let mut opts = options(&data, 5);
    opts.free_run_every = 5;
    opts.free_run_notes = 1;
    opts.free_run_secs = 0.05;
    let straight = tmp.path().join("straight");
    let (summary, _) = run_to_end(&mut start_samplernn(&straight, &cfg, opts.clone()));
    assert_eq!(summary.step, 5);
    assert!(summary.last_loss.unwrap().is_finite());
    assert_resumes_exactly(
        &straight,
        &tmp.path().join("split"),
        2,
        |dir| start_samplernn(dir, &cfg, opts),
        |dir| SampleRnnTrainer::resume(dir, None, &Device::Cpu).unwrap(),
    );
    let log = std::fs::read_to_string(straight.join("train_log.jsonl")).unwrap();
    assert!(log.contains("\"event\":\"freerun\""), "{log}");
    // The other trainer refuses it.
    assert!(Trainer::resume(&straight, None, None, &Device::Cpu).is_err());
}
