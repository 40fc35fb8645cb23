//! Scores per instrument: a mean hides the instrument a model cannot play.

use std::collections::BTreeMap;

use serde::Serialize;

use super::NoteScore;

/// One instrument's reconstructions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstrumentScore {
    pub instrument: String,
    pub notes: usize,
    /// Notes whose original has a pitch (YIN), and how many of them were reconstructed
    /// at it.
    pub pitched_notes: usize,
    pub in_tune: usize,
    /// `in_tune / pitched_notes` (`None`: none pitched).
    pub pitch_accuracy: Option<f64>,
    /// Mean log-mel distance of its notes.
    pub log_mel_distance_db: f64,
}

/// The scores of `per_note` by instrument (`instruments[i]` is note `i`'s), worst first:
/// see [`worst_first`].
pub fn by_instrument(per_note: &[NoteScore], instruments: &[String]) -> Vec<InstrumentScore> {
    let mut groups: BTreeMap<&str, Vec<&NoteScore>> = BTreeMap::new();
    for (note, instrument) in per_note.iter().zip(instruments) {
        groups.entry(instrument).or_default().push(note);
    }
    let mut scores: Vec<InstrumentScore> = groups
        .into_iter()
        .map(|(instrument, notes)| {
            let pitched: Vec<bool> = notes.iter().filter_map(|n| n.pitch_match).collect();
            let in_tune = pitched.iter().filter(|&&m| m).count();
            InstrumentScore {
                instrument: instrument.to_string(),
                notes: notes.len(),
                pitched_notes: pitched.len(),
                in_tune,
                pitch_accuracy: (!pitched.is_empty())
                    .then(|| in_tune as f64 / pitched.len() as f64),
                log_mel_distance_db: notes
                    .iter()
                    .map(|n| f64::from(n.log_mel_distance_db))
                    .sum::<f64>()
                    / notes.len() as f64,
            }
        })
        .collect();
    worst_first(&mut scores);
    scores
}

/// Orders instruments worst first: the largest mean log-mel distance first, and among
/// equals the lower pitch accuracy, then the name.
pub fn worst_first(scores: &mut [InstrumentScore]) {
    scores.sort_by(|a, b| {
        b.log_mel_distance_db
            .total_cmp(&a.log_mel_distance_db)
            .then_with(|| {
                let accuracy = |s: &InstrumentScore| s.pitch_accuracy.unwrap_or(1.0);
                accuracy(a).total_cmp(&accuracy(b))
            })
            .then_with(|| a.instrument.cmp(&b.instrument))
    });
}
