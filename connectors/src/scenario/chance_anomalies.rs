//! Anomalies that ordinary traffic and noise produced by chance, found by
//! scanning the ground truth after generation and recorded with
//! `planted = false`, so that a view is not scored wrong for flagging them.

use std::collections::BTreeMap;

use super::Builder;
use borderflow_types::crossings::find_post;

use super::anomalies::{chars_differ, post_label, utc};
use super::ground_truth::{AnomalyKind, ReadOutcome, Stage};
use super::traffic::DAY_MS;

/// "Criva (MD)" for a known post id, else the id.
fn label(post_id: &str) -> String {
    find_post(post_id).map_or_else(|| post_id.to_string(), post_label)
}

impl Builder<'_> {
    /// Records what ordinary traffic and noise produced by chance.
    pub(super) fn detect_chance_anomalies(&mut self) {
        let ordinary: Vec<usize> = (0..self.passages.len())
            .filter(|&p| self.passages[p].planted.is_none())
            .collect();

        for &p in &ordinary {
            let passage = &self.passages[p];
            let both_exits_missed = passage.outcome(Stage::ExitArrival) == ReadOutcome::Missed
                && passage.outcome(Stage::ExitDeparture) == ReadOutcome::Missed;
            let entry_reads: Vec<usize> = [Stage::EntryArrival, Stage::EntryDeparture]
                .iter()
                .filter_map(|&st| self.passage_reads[p][st.index()])
                .collect();
            if both_exits_missed && !entry_reads.is_empty() {
                let description = format!(
                    "plate {} was read entering {} at {} but both exit cameras at {} missed it (noise)",
                    passage.plate,
                    passage.to_country,
                    label(&passage.to_post),
                    label(&passage.from_post),
                );
                let (plate, posts) = (
                    passage.plate.clone(),
                    vec![passage.to_post.clone(), passage.from_post.clone()],
                );
                self.record(
                    AnomalyKind::EntryWithoutExit,
                    false,
                    plate,
                    posts,
                    &entry_reads,
                    &[p],
                    description,
                );
            }

            let departed = self.passage_reads[p][Stage::ExitDeparture.index()];
            let arrived = self.passage_reads[p][Stage::EntryArrival.index()];
            if let (Some(d), Some(a)) = (departed, arrived) {
                let differ = chars_differ(&self.reads[d].plate_norm, &self.reads[a].plate_norm);
                if differ >= 2 {
                    let passage = &self.passages[p];
                    let description = format!(
                        "plate {} left {} read as `{}` and arrived at {} read as `{}` ({differ} characters \
                         differ; both reads have noise)",
                        passage.plate,
                        label(&passage.from_post),
                        self.reads[d].plate_text,
                        label(&passage.to_post),
                        self.reads[a].plate_text,
                    );
                    let (plate, posts) = (
                        passage.plate.clone(),
                        vec![passage.from_post.clone(), passage.to_post.clone()],
                    );
                    self.record(
                        AnomalyKind::Misread,
                        false,
                        plate,
                        posts,
                        &[d, a],
                        &[p],
                        description,
                    );
                }
            }
        }

        // More than six crossings of one plate within 24 hours.
        let mut by_plate: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for &p in &ordinary {
            by_plate
                .entry(self.passages[p].plate.as_str())
                .or_default()
                .push(p);
        }
        let mut frequent: Vec<Vec<usize>> = Vec::new();
        for list in by_plate.into_values() {
            if list.len() <= 6 {
                continue;
            }
            let mut list = list;
            list.sort_by_key(|&p| self.passages[p].exit_arrival_ms);
            let mut best: Option<(usize, usize)> = None;
            let mut lo = 0;
            for hi in 0..list.len() {
                while self.passages[list[hi]].exit_arrival_ms
                    - self.passages[list[lo]].exit_arrival_ms
                    >= DAY_MS
                {
                    lo += 1;
                }
                if hi - lo + 1 > 6 && best.is_none_or(|(l, h)| hi - lo > h - l) {
                    best = Some((lo, hi));
                }
            }
            if let Some((lo, hi)) = best {
                frequent.push(list[lo..=hi].to_vec());
            }
        }
        for window in frequent {
            let first = &self.passages[window[0]];
            let plate = first.plate.clone();
            let mut posts: Vec<String> = window
                .iter()
                .flat_map(|&p| {
                    [
                        self.passages[p].from_post.clone(),
                        self.passages[p].to_post.clone(),
                    ]
                })
                .collect();
            posts.sort();
            posts.dedup();
            let evidence: Vec<usize> = window
                .iter()
                .flat_map(|&p| self.passage_reads[p].into_iter().flatten())
                .collect();
            let description = format!(
                "plate {plate} crossed {} times within 24 h starting {} (ordinary return trips)",
                window.len(),
                utc(first.exit_arrival_ms),
            );
            self.record(
                AnomalyKind::FrequentCrosser,
                false,
                plate,
                posts,
                &evidence,
                &window,
                description,
            );
        }
    }
}
