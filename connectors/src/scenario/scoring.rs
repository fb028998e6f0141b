//! Scores the standard views against a scenario's ground truth: per
//! `risk_flags` rule, precision (flags whose evidence belongs to a true
//! anomaly of the rule's kind) and recall (planted anomalies flagged); for
//! `cross_border_matches`, the match rate over passages both posts read and
//! the false-match rate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use arrow::array::{Array, RecordBatch, StringArray};
use crate::scenario::{AnomalyKind, Scenario};

/// Each `risk_flags` rule and the anomaly kind it detects.
pub const RULES: &[(&str, AnomalyKind)] = &[
    ("watchlist_hit", AnomalyKind::Watchlisted),
    ("plate_cloning", AnomalyKind::ClonedPlate),
    ("no_pre_arrival", AnomalyKind::EntryWithoutExit),
    ("pre_arrival_mismatch", AnomalyKind::Misread),
    ("long_dwell", AnomalyKind::LongDwell),
    ("frequent_crossings", AnomalyKind::FrequentCrosser),
];

/// How one rule did.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleScore {
    pub rule: &'static str,
    pub flags: usize,
    /// Flags whose evidence belongs to an anomaly (planted or by chance) of the rule's kind.
    pub correct: usize,
    pub planted: usize,
    /// Planted anomalies of the kind that some flag of the rule points at.
    pub planted_found: usize,
    /// All anomalies of the kind (planted and by chance), and those found.
    pub all: usize,
    pub all_found: usize,
}

impl RuleScore {
    /// Correct flags over flags (1 when there are none).
    pub fn precision(&self) -> f64 {
        if self.flags == 0 { 1.0 } else { self.correct as f64 / self.flags as f64 }
    }

    /// Planted anomalies found over planted (1 when none were planted).
    pub fn recall(&self) -> f64 {
        if self.planted == 0 { 1.0 } else { self.planted_found as f64 / self.planted as f64 }
    }
}

impl fmt::Display for RuleScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<22} {:>5} flags, precision {:.3} ({}/{}), planted found {}/{} (recall {:.3}), with chance anomalies {}/{}",
            self.rule,
            self.flags,
            self.precision(),
            self.correct,
            self.flags,
            self.planted_found,
            self.planted,
            self.recall(),
            self.all_found,
            self.all
        )
    }
}

fn strings<'a>(batch: &'a RecordBatch, column: &str) -> &'a StringArray {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .unwrap_or_else(|| panic!("column `{column}` of Utf8"))
}

/// Scores `risk_flags` rows against the scenario.
pub fn score_flags(flags: &RecordBatch, scenario: &Scenario) -> Vec<RuleScore> {
    let passage_reads: HashMap<&str, Vec<&str>> = scenario
        .passages
        .iter()
        .map(|p| (p.passage_id.as_str(), p.read_ids.iter().flatten().map(String::as_str).collect()))
        .collect();
    // Per anomaly: its evidence and every read of its passages.
    let anomaly_reads: Vec<HashSet<&str>> = scenario
        .anomalies
        .iter()
        .map(|a| {
            let mut reads: HashSet<&str> = a.read_ids.iter().map(String::as_str).collect();
            for passage in &a.passage_ids {
                reads.extend(passage_reads.get(passage.as_str()).into_iter().flatten().copied());
            }
            reads
        })
        .collect();
    let (rules, evidence) = (strings(flags, "rule"), strings(flags, "evidence"));
    RULES
        .iter()
        .map(|&(rule, kind)| {
            let of_kind: Vec<usize> = (0..scenario.anomalies.len()).filter(|&i| scenario.anomalies[i].kind == kind).collect();
            let mut found: HashSet<usize> = HashSet::new();
            let (mut count, mut correct) = (0, 0);
            for row in (0..flags.num_rows()).filter(|&r| rules.value(r) == rule) {
                count += 1;
                let ids: Vec<&str> = evidence.value(row).split(',').collect();
                let hits: Vec<usize> = of_kind.iter().copied().filter(|&i| ids.iter().any(|id| anomaly_reads[i].contains(id))).collect();
                correct += usize::from(!hits.is_empty());
                found.extend(hits);
            }
            let planted: Vec<usize> = of_kind.iter().copied().filter(|&i| scenario.anomalies[i].planted).collect();
            RuleScore {
                rule,
                flags: count,
                correct,
                planted: planted.len(),
                planted_found: planted.iter().filter(|i| found.contains(i)).count(),
                all: of_kind.len(),
                all_found: found.len(),
            }
        })
        .collect()
}

/// How `cross_border_matches` did.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchScore {
    /// Passages with an entry arrival read and at least one exit read.
    pub matchable: usize,
    /// Of those, passages matched to one of their own exit reads.
    pub matched: usize,
    pub matches: usize,
    /// Matches whose two reads belong to different passages.
    pub false_matches: usize,
    /// Matches by kind (`exact`, `fuzzy`).
    pub by_kind: BTreeMap<String, usize>,
}

impl MatchScore {
    pub fn match_rate(&self) -> f64 {
        if self.matchable == 0 { 1.0 } else { self.matched as f64 / self.matchable as f64 }
    }

    pub fn false_match_rate(&self) -> f64 {
        if self.matches == 0 { 0.0 } else { self.false_matches as f64 / self.matches as f64 }
    }
}

impl fmt::Display for MatchScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} matches ({}), match rate {:.4} ({}/{} passages read on both sides), false-match rate {:.4} ({})",
            self.matches,
            self.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
            self.match_rate(),
            self.matched,
            self.matchable,
            self.false_match_rate(),
            self.false_matches
        )
    }
}

/// Scores `cross_border_matches` rows against the scenario's passages.
pub fn score_matches(matches: &RecordBatch, scenario: &Scenario) -> MatchScore {
    let mut passage_of: HashMap<&str, usize> = HashMap::new();
    for (i, p) in scenario.passages.iter().enumerate() {
        for id in p.read_ids.iter().flatten() {
            passage_of.insert(id, i);
        }
    }
    let (exits, entries, kinds) = (strings(matches, "exit_read_id"), strings(matches, "entry_read_id"), strings(matches, "match"));
    let mut score = MatchScore { matchable: 0, matched: 0, matches: matches.num_rows(), false_matches: 0, by_kind: BTreeMap::new() };
    let mut matched: HashSet<usize> = HashSet::new();
    for row in 0..matches.num_rows() {
        *score.by_kind.entry(kinds.value(row).to_string()).or_default() += 1;
        match (passage_of.get(exits.value(row)), passage_of.get(entries.value(row))) {
            (Some(a), Some(b)) if a == b => {
                matched.insert(*a);
            }
            _ => score.false_matches += 1,
        }
    }
    for (i, p) in scenario.passages.iter().enumerate() {
        if p.read_ids[2].is_some() && (p.read_ids[0].is_some() || p.read_ids[1].is_some()) {
            score.matchable += 1;
            score.matched += usize::from(matched.contains(&i));
        }
    }
    score
}

/// A column of strings, for tests and reports.
pub fn column_values(batch: &RecordBatch, column: &str) -> Vec<String> {
    let array = strings(batch, column);
    (0..array.len()).map(|i| array.value(i).to_string()).collect()
}
