//! `biclassification_eval`: AUC, KS, and F1 / precision / recall / accuracy at threshold 0.5.
//!
//! AUC is the Mann-Whitney statistic with tied scores sharing their average rank (equal to sklearn's
//! `roc_auc_score`); KS is the largest TPR - FPR over the ROC curve's thresholds. A row is predicted positive
//! when its score is >= 0.5; undefined precision or F1 (nothing predicted positive) is 0, as sklearn's
//! `zero_division` default. `bucket_size` equal-frequency buckets (highest scores first, sizes as
//! `numpy.array_split`) go into the report. Labels must be 0 or 1, with both present.

use secretflow_crds::outputs::{BiclassificationMetrics, BiclassificationResult, ScoreBucket};
use secretflow_crds::tasks::evaluation::BiclassificationEvalConfig;

use super::super::JobOutput;
use super::{Scored, on_holder};
use crate::context::PartyContext;
use crate::error::{Error, Result};

/// Evaluate a binary classifier.
pub async fn run(ctx: &PartyContext, c: &BiclassificationEvalConfig) -> Result<JobOutput> {
    let me = ctx.party.clone();
    let buckets = c.bucket_size as usize;
    let label = c.label_column.clone();
    let (metrics, bucket_report) =
        on_holder(ctx, "biclassification_eval", &c.prediction_data, &c.label_column, &c.prediction_column, |s| {
            if let Some(bad) = s.label.iter().find(|y| **y != 0.0 && **y != 1.0) {
                return Err(Error::bad_data(
                    &me,
                    "task_config.label_column",
                    format!("column `{label}` must hold 0/1 labels, found {bad}"),
                ));
            }
            let positives = s.label.iter().filter(|y| **y == 1.0).count();
            if positives == 0 || positives == s.label.len() {
                return Err(Error::bad_data(
                    &me,
                    "task_config.label_column",
                    format!("column `{label}` must contain both classes"),
                ));
            }
            Ok((metrics(&s), bucket_report(&s, buckets)))
        })
        .await?;
    JobOutput::with_report(
        &BiclassificationResult { output_report: c.output_report.clone(), metrics, bucket_report },
        &c.output_report,
    )
}

/// Row indices by score, highest first (stable).
fn by_score_desc(s: &Scored) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..s.score.len()).collect();
    idx.sort_by(|a, b| s.score[*b].total_cmp(&s.score[*a]));
    idx
}

pub(crate) fn metrics(s: &Scored) -> BiclassificationMetrics {
    let n = s.label.len();
    let pos = s.label.iter().filter(|y| **y == 1.0).count() as f64;
    let neg = n as f64 - pos;
    let order = by_score_desc(s);

    // Walk thresholds from the highest score down; groups of equal scores move together.
    let (mut tp, mut fp, mut ks, mut auc) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < n {
        let score = s.score[order[i]];
        let (mut gtp, mut gfp) = (0.0, 0.0);
        while i < n && s.score[order[i]] == score {
            if s.label[order[i]] == 1.0 {
                gtp += 1.0
            } else {
                gfp += 1.0
            }
            i += 1;
        }
        // Trapezoid over the tied group = average rank for ties.
        auc += gfp * (tp + gtp / 2.0);
        tp += gtp;
        fp += gfp;
        ks = ks.max(tp / pos - fp / neg);
    }
    let auc = auc / (pos * neg);

    let (mut tp, mut fp, mut tn, mut fn_) = (0.0, 0.0, 0.0, 0.0);
    for (y, p) in s.label.iter().zip(&s.score) {
        match (*y == 1.0, *p >= 0.5) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (false, false) => tn += 1.0,
            (true, false) => fn_ += 1.0,
        }
    }
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    BiclassificationMetrics { auc, ks, f1_score: f1, precision, recall, accuracy: (tp + tn) / n as f64 }
}

fn bucket_report(s: &Scored, buckets: usize) -> Vec<ScoreBucket> {
    let order = by_score_desc(s);
    let n = order.len();
    let (base, extra) = (n / buckets, n % buckets);
    let mut out = Vec::with_capacity(buckets);
    let mut start = 0;
    for b in 0..buckets {
        let len = base + usize::from(b < extra);
        if len == 0 {
            continue;
        }
        let rows = &order[start..start + len];
        start += len;
        let positive = rows.iter().filter(|r| s.label[**r] == 1.0).count() as u64;
        out.push(ScoreBucket {
            count: len as u64,
            positive,
            negative: len as u64 - positive,
            min_score: rows.iter().map(|r| s.score[*r]).fold(f64::INFINITY, f64::min),
            max_score: rows.iter().map(|r| s.score[*r]).fold(f64::NEG_INFINITY, f64::max),
            positive_rate: positive as f64 / len as f64,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_ks_on_a_small_case_with_ties() {
        // sklearn: roc_auc_score([0,0,1,1,1,0], [0.1,0.4,0.35,0.8,0.4,0.2]) == 0.8333...
        let s = Scored { label: vec![0.0, 0.0, 1.0, 1.0, 1.0, 0.0], score: vec![0.1, 0.4, 0.35, 0.8, 0.4, 0.2] };
        let m = metrics(&s);
        assert!((m.auc - 5.0 / 6.0).abs() < 1e-12, "{}", m.auc);
        assert!((m.ks - 2.0 / 3.0).abs() < 1e-12, "{}", m.ks);
        assert_eq!(m.accuracy, 4.0 / 6.0);
        let b = bucket_report(&s, 4);
        assert_eq!(b.iter().map(|b| b.count).collect::<Vec<_>>(), vec![2, 2, 1, 1]);
    }
}
