//! The edge where the library crates' typed errors become words for the command line:
//! what the engine reports in its own terms gets the flag that changes it.

use engine::Error;
use engine::train::OptionsError;

/// The one line `timbrel` prints for a failed command.
pub fn explain(err: &anyhow::Error) -> String {
    match err.downcast_ref::<Error>() {
        Some(Error::Exists(path)) => {
            format!(
                "{} already exists (use --force to overwrite)",
                path.display()
            )
        }
        Some(Error::ModelExists(path)) => format!(
            "a model is already there (use --resume to continue its training, or --force to start over): {}",
            path.display()
        ),
        Some(Error::OutputIsInput { output, input }) => format!(
            "the output is one of the inputs ({}), which --force never writes over: name another output: {}",
            input.display(),
            output.display()
        ),
        Some(Error::NotCreatedByTimbrel { path, what }) => format!(
            "Timbrel did not make this ({what}), so even --force leaves it as it is: choose another folder or move it away: {}",
            path.display()
        ),
        Some(Error::TrainOptions(o)) => training_option(o),
        Some(Error::Compute(autoencoder::Error::Diverged(norm))) => {
            format!("the gradient norm is {norm}: training diverged (lower --lr)")
        }
        _ => format!("{err:#}"),
    }
}

fn training_option(o: &OptionsError) -> String {
    match o {
        OptionsError::NoData => "no --data given".into(),
        OptionsError::Crop { crop, hop, max } => format!(
            "--crop {crop} must be a positive multiple of the model's hop ({hop}) and at most {max}"
        ),
        OptionsError::BatchOrSteps => "--batch and --steps must be at least 1".into(),
        OptionsError::LearningRate(lr) => format!("--lr {lr} must be a positive number"),
        OptionsError::InputNoise(v) => format!("--input-noise {v} must be between 0 and 1"),
        OptionsError::UnpitchedShare(v) => {
            format!("--unpitched-share {v} must be between 0 and 1")
        }
        OptionsError::SubOctaveShare(v) => {
            format!("--sub-octave-share {v} must be between 0 and 1")
        }
        OptionsError::BankWeight(v) => {
            format!("--bank-weight {v} must be a number from 0 up")
        }
        OptionsError::FreeRun => {
            "--free-run-notes must be 1 or more and --free-run-secs at most 4".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_errors_get_their_flags() {
        let exists = anyhow::Error::from(Error::Exists("out.wav".into()));
        assert_eq!(
            explain(&exists),
            "out.wav already exists (use --force to overwrite)"
        );
        let lr = anyhow::Error::from(Error::TrainOptions(OptionsError::LearningRate(-1.0)));
        assert!(explain(&lr).starts_with("--lr -1"));
        let share = anyhow::Error::from(Error::TrainOptions(OptionsError::SubOctaveShare(2.0)));
        assert_eq!(
            explain(&share),
            "--sub-octave-share 2 must be between 0 and 1"
        );
        let same = anyhow::Error::from(Error::OutputIsInput {
            output: "a.wav".into(),
            input: "./a.wav".into(),
        });
        assert_eq!(
            explain(&same),
            "the output is one of the inputs (./a.wav), which --force never writes over: name another output: a.wav"
        );
        let foreign = anyhow::Error::from(Error::NotCreatedByTimbrel {
            path: "out/config.json".into(),
            what: "no mark".into(),
        });
        let line = explain(&foreign);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.ends_with(": out/config.json"), "{line}");
        let other = anyhow::anyhow!("plain words");
        assert_eq!(explain(&other), "plain words");
    }
}
