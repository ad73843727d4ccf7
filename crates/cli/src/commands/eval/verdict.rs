//! The verdict measures: whether a document read right passes straight through, whether a
//! document read wrong is held for review (a wrong one that completes is a silent error),
//! and whether field confidence predicts correctness (a reliability table).
//!
//! "Right" is judged on the key fields only: the ones a user acts on (number, date,
//! currency, totals). A document counts in the verdict when its answers hold at least one
//! of them.

use docpipe_core::JobStatus;
use serde::Serialize;

/// Key fields of Factur-X / ZUGFeRD answers (those the answers hold are judged).
pub(super) const KEY_FIELDS_EINVOICE: [&str; 6] = [
    "invoice_number",
    "issue_date",
    "currency",
    "net_total",
    "tax_total",
    "gross_total",
];

/// Key fields of invoice2data answers: number, date, gross.
pub(super) const KEY_FIELDS_INVOICE2DATA: [&str; 3] =
    ["invoice_number", "issue_date", "gross_total"];

/// Upper edges of the reliability bins: `[0, 0.5)`, `[0.5, 0.8)`, `[0.8, 0.9)`,
/// `[0.9, 0.95)`, `[0.95, 1.0]`.
pub(super) const BIN_EDGES: [f32; 6] = [0.0, 0.5, 0.8, 0.9, 0.95, 1.0];

/// The confidence above which a field should be right: the headline of the table.
pub(super) const CONFIDENT: f32 = 0.9;

/// How one document went, as the verdict sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Judged {
    pub status: JobStatus,
    /// How many key fields its answers hold.
    pub key_fields: usize,
    /// All of them extracted and right.
    pub key_fields_right: bool,
}

/// Verdict quality over a set of documents. Rates are fractions (0..1), `None` when their
/// denominator is zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct Verdict {
    /// Documents judged (answers with at least one key field).
    pub documents: usize,
    /// Of those, documents whose key fields are all right.
    pub key_fields_right: usize,
    /// Documents with key fields all right that completed without review.
    pub straight_through: usize,
    /// `straight_through / key_fields_right`.
    pub straight_through_rate: Option<f64>,
    /// Documents completed without review with a key field wrong or missing.
    pub silent_errors: usize,
    /// `silent_errors / documents`: must stay near zero.
    pub silent_error_rate: Option<f64>,
    /// Documents sent to review whose key fields are all right.
    pub needless_reviews: usize,
    /// `needless_reviews / key_fields_right`.
    pub needless_review_rate: Option<f64>,
    /// Documents sent to review with a key field wrong: the review did its job.
    pub caught_errors: usize,
    /// Jobs that failed (or ended in any other status).
    pub failed: usize,
    /// Documents whose answers hold no key field, left out of everything above.
    pub unjudged: usize,
}

fn ratio(n: usize, d: usize) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

impl Verdict {
    pub(super) fn tally(docs: impl IntoIterator<Item = Judged>) -> Self {
        let mut v = Verdict::default();
        for d in docs {
            if d.key_fields == 0 {
                v.unjudged += 1;
                continue;
            }
            v.documents += 1;
            if d.key_fields_right {
                v.key_fields_right += 1;
            }
            match (d.status, d.key_fields_right) {
                (JobStatus::Completed, true) => v.straight_through += 1,
                (JobStatus::Completed, false) => v.silent_errors += 1,
                (JobStatus::NeedsReview, true) => v.needless_reviews += 1,
                (JobStatus::NeedsReview, false) => v.caught_errors += 1,
                _ => v.failed += 1,
            }
        }
        v.straight_through_rate = ratio(v.straight_through, v.key_fields_right);
        v.silent_error_rate = ratio(v.silent_errors, v.documents);
        v.needless_review_rate = ratio(v.needless_reviews, v.key_fields_right);
        v
    }
}

/// Scored fields whose confidence falls in `[from, to)` (the last bin includes 1.0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Bin {
    pub from: f32,
    pub to: f32,
    pub fields: usize,
    pub correct: usize,
    pub accuracy: Option<f64>,
}

/// Fields at or above a confidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct AtLeast {
    pub confidence: f32,
    pub fields: usize,
    pub correct: usize,
    pub accuracy: Option<f64>,
}

/// How well field confidence predicts correctness. A field is scored when the answers hold
/// it and the extractor returned it (with its confidence); one the extractor missed has no
/// confidence and is counted under `missing`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Reliability {
    pub bins: Vec<Bin>,
    /// The headline: accuracy of fields at confidence >= 0.9.
    pub confident: AtLeast,
    pub missing: usize,
}

impl Reliability {
    /// `fields`: one `(confidence, correct)` per scored field, `None` for a field the
    /// answers hold and the extractor did not return.
    pub(super) fn tally(fields: impl IntoIterator<Item = Option<(f32, bool)>>) -> Self {
        let mut bins: Vec<Bin> = BIN_EDGES
            .windows(2)
            .map(|w| Bin {
                from: w[0],
                to: w[1],
                fields: 0,
                correct: 0,
                accuracy: None,
            })
            .collect();
        let mut confident = AtLeast {
            confidence: CONFIDENT,
            fields: 0,
            correct: 0,
            accuracy: None,
        };
        let mut missing = 0;
        for f in fields {
            let Some((conf, correct)) = f else {
                missing += 1;
                continue;
            };
            let conf = if conf.is_nan() {
                0.0
            } else {
                conf.clamp(0.0, 1.0)
            };
            let last = bins.len().saturating_sub(1);
            let i = bins.iter().position(|b| conf < b.to).unwrap_or(last);
            if let Some(b) = bins.get_mut(i) {
                b.fields += 1;
                b.correct += usize::from(correct);
            }
            if conf >= CONFIDENT {
                confident.fields += 1;
                confident.correct += usize::from(correct);
            }
        }
        for b in &mut bins {
            b.accuracy = ratio(b.correct, b.fields);
        }
        confident.accuracy = ratio(confident.correct, confident.fields);
        Self {
            bins,
            confident,
            missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(status: JobStatus, key_fields: usize, right: bool) -> Judged {
        Judged {
            status,
            key_fields,
            key_fields_right: right,
        }
    }

    #[test]
    fn verdict_tallies_each_outcome() {
        use JobStatus::*;
        let v = Verdict::tally([
            doc(Completed, 6, true),
            doc(Completed, 6, true),
            doc(Completed, 3, true),
            doc(Completed, 6, false),
            doc(NeedsReview, 6, true),
            doc(NeedsReview, 6, false),
            doc(NeedsReview, 5, false),
            doc(Failed, 6, false),
            // Answers with no key field are not judged at all.
            doc(Completed, 0, false),
        ]);
        assert_eq!(v.documents, 8);
        assert_eq!(v.unjudged, 1);
        assert_eq!(v.key_fields_right, 4);
        assert_eq!(v.straight_through, 3);
        assert_eq!(v.straight_through_rate, Some(0.75));
        assert_eq!(v.silent_errors, 1);
        assert_eq!(v.silent_error_rate, Some(1.0 / 8.0));
        assert_eq!(v.needless_reviews, 1);
        assert_eq!(v.needless_review_rate, Some(0.25));
        assert_eq!(v.caught_errors, 2);
        assert_eq!(v.failed, 1);
        // Every judged document lands in exactly one outcome.
        assert_eq!(
            v.straight_through + v.silent_errors + v.needless_reviews + v.caught_errors + v.failed,
            v.documents
        );
    }

    #[test]
    fn verdict_of_nothing_has_no_rates() {
        let v = Verdict::tally([]);
        assert_eq!(v, Verdict::default());
        assert_eq!(v.straight_through_rate, None);
        // All wrong: no straight-through rate (nothing was right), every completion silent.
        let v = Verdict::tally([doc(JobStatus::Completed, 3, false)]);
        assert_eq!(v.straight_through_rate, None);
        assert_eq!(v.silent_error_rate, Some(1.0));
    }

    #[test]
    fn reliability_bins_by_confidence() {
        let r = Reliability::tally([
            Some((0.2, false)),
            Some((0.5, true)), // lower edge belongs to its bin
            Some((0.79, false)),
            Some((0.85, true)),
            Some((0.9, true)),
            Some((0.94, false)),
            Some((0.95, true)),
            Some((1.0, true)), // the last bin is closed
            Some((1.7, true)), // out of range: clamped
            Some((f32::NAN, false)),
            None,
            None,
        ]);
        let counts: Vec<(usize, usize)> = r.bins.iter().map(|b| (b.fields, b.correct)).collect();
        assert_eq!(counts, [(2, 0), (2, 1), (1, 1), (2, 1), (3, 3)]);
        assert_eq!(r.bins[0].accuracy, Some(0.0));
        assert_eq!(r.bins[1].accuracy, Some(0.5));
        assert_eq!(r.bins[4].accuracy, Some(1.0));
        assert_eq!((r.bins[0].from, r.bins[4].to), (0.0, 1.0));
        assert_eq!((r.confident.fields, r.confident.correct), (5, 4));
        assert_eq!(r.confident.accuracy, Some(0.8));
        assert_eq!(r.missing, 2);
    }

    #[test]
    fn empty_bins_have_no_accuracy() {
        let r = Reliability::tally([Some((0.99, true))]);
        assert!(
            r.bins[..4]
                .iter()
                .all(|b| b.fields == 0 && b.accuracy.is_none())
        );
        assert_eq!(r.confident.accuracy, Some(1.0));
        assert_eq!(r.missing, 0);
    }
}
