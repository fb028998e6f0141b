//! Voting a track's readings into one plate, character by character.
//!
//! A track is read several times as it approaches; single readings differ
//! in a character or two (blur, a look-alike, a country strip taken for a
//! letter). Readings are grouped by length; the heaviest group (sum of
//! confidences) wins. Within it, each format of the plate grammars with that
//! length proposes a text: at each position the character with the most
//! confidence-weighted votes among those the format allows there (a vote
//! for O counts for 0 where the format prints a digit, and the other way
//! round, at [`TWIN_WEIGHT`]). The
//! proposal with the most weight behind its characters wins; only when no
//! format can propose (plates of countries without a grammar) is the
//! vote unconstrained.
//! So two readings `ABC123` (0.9) and `A8C123` (0.5) vote `ABC123`, and the
//! result always fits a grammar when the readings do.

use borderflow_types::plate_grammar::{PlateFormat, formats_for, plate_country};

/// One reading of a track, as the vote needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Ballot {
    /// Normalised text.
    pub text: String,
    /// 0..1
    pub confidence: f32,
}

/// The outcome of a vote.
#[derive(Clone, Debug, PartialEq)]
pub struct Voted {
    pub text: String,
    /// The country whose grammar the text fits (the camera's country first).
    pub country: Option<&'static str>,
    /// Share of the vote behind the text's characters times the agreeing
    /// readings' mean confidence, 0..1.
    pub confidence: f32,
    /// Readings of the winning length.
    pub support: usize,
}

/// The voted plate of `ballots`, `None` when there is no ballot.
pub fn vote(ballots: &[Ballot], prefer_country: Option<&str>) -> Option<Voted> {
    let total: f32 = ballots.iter().map(|b| b.confidence.max(1e-3)).sum();
    // The heaviest length.
    let mut lengths: Vec<(usize, f32)> = Vec::new();
    for b in ballots.iter().filter(|b| !b.text.is_empty()) {
        let n = b.text.chars().count();
        match lengths.iter_mut().find(|(len, _)| *len == n) {
            Some((_, w)) => *w += b.confidence.max(1e-3),
            None => lengths.push((n, b.confidence.max(1e-3))),
        }
    }
    let &(length, group_weight) = lengths.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let group: Vec<(Vec<char>, f32)> = ballots
        .iter()
        .filter(|b| b.text.chars().count() == length)
        .map(|b| (b.text.chars().collect(), b.confidence.max(1e-3)))
        .collect();

    // Each format of this length proposes a text; the heaviest proposal
    // wins. Only when no format can propose does the unconstrained vote count.
    let mut best: Option<(f32, String)> = None;
    for format in formats_for(prefer_country).filter(|f| f.pattern.chars().count() == length) {
        if let Some((weight, text)) = propose(&group, length, Some(format))
            && best.as_ref().is_none_or(|(w, _)| weight > *w + 1e-4)
        {
            best = Some((weight, text));
        }
    }
    if best.is_none() {
        best = propose(&group, length, None);
    }
    let (weight, text) = best?;
    let agreement = weight / (group_weight * length as f32);
    let mean_confidence = group.iter().map(|(_, w)| w).sum::<f32>() / group.len() as f32;
    Some(Voted {
        country: plate_country(&text, prefer_country),
        text,
        confidence: (agreement * mean_confidence * (group_weight / total).sqrt()).clamp(0.0, 1.0),
        support: group.len(),
    })
}

/// A vote for O where a format prints 0 (or the other way round) counts
/// this share of its weight: the two look alike on most plates, and
/// recognizers confuse them more than any other pair.
const TWIN_WEIGHT: f32 = 0.95;

/// O for 0 and 0 for O.
fn o_zero_twin(c: char) -> Option<char> {
    match c {
        'O' => Some('0'),
        '0' => Some('O'),
        _ => None,
    }
}

/// The text `format` (or no format) makes of `group`: per position the
/// heaviest allowed character; `None` if some position has no allowed vote.
fn propose(group: &[(Vec<char>, f32)], length: usize, format: Option<&PlateFormat>) -> Option<(f32, String)> {
    let slots: Vec<Option<char>> = match format {
        Some(f) => f.pattern.chars().map(Some).collect(),
        None => vec![None; length],
    };
    let mut text = String::with_capacity(length);
    let mut weight = 0.0;
    for (position, slot) in slots.iter().enumerate() {
        let mut tally: Vec<(char, f32)> = Vec::new();
        for (chars, w) in group {
            let (mut c, mut w) = (chars[position], *w);
            if let (Some(f), Some(slot)) = (format, slot)
                && !f.allows(*slot, c)
            {
                // O and 0: the slot decides which (`AB 7107 OO` read
                // `AB710700` is a vote for the O's).
                match o_zero_twin(c).filter(|&twin| f.allows(*slot, twin)) {
                    Some(twin) => (c, w) = (twin, w * TWIN_WEIGHT),
                    None => continue,
                }
            }
            match tally.iter_mut().find(|(k, _)| *k == c) {
                Some((_, sum)) => *sum += w,
                None => tally.push((c, w)),
            }
        }
        let (c, w) = tally.into_iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
        text.push(c);
        weight += w;
    }
    Some((weight, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ballot(text: &str, confidence: f32) -> Ballot {
        Ballot { text: text.to_string(), confidence }
    }

    #[test]
    fn characters_are_voted_by_confidence() {
        let voted = vote(&[ballot("ABC123", 0.9), ballot("A8C123", 0.5), ballot("ABC128", 0.4)], Some("MD")).expect("a vote");
        assert_eq!(voted.text, "ABC123");
        assert_eq!(voted.country, Some("MD"));
        assert_eq!(voted.support, 3);
    }

    #[test]
    fn the_grammar_constrains_each_position() {
        // Two weak readings put a digit where a Ukrainian plate has a letter; the format overrules them.
        let voted = vote(&[ballot("AA1234B8", 0.4), ballot("AA1234B8", 0.4), ballot("AA1234BB", 0.7)], Some("UA")).expect("a vote");
        assert_eq!(voted.text, "AA1234BB");
    }

    #[test]
    fn o_and_0_are_told_apart_by_the_format() {
        // A Ukrainian plate ending in OO read with zeros, and once with a 7
        // taken for a T (which fits a Polish format, zeros and all).
        let ballots = [ballot("AB710700", 0.75), ballot("ABT10700", 0.34), ballot("AB710700", 0.75), ballot("ABT10700", 0.34)];
        assert_eq!(vote(&ballots, Some("MD")).expect("a vote").text, "AB7107OO");
        // A Polish plate read as printed stays Polish.
        assert_eq!(vote(&[ballot("ABT10700", 0.9)], Some("MD")).expect("a vote").text, "ABT10700");
    }

    #[test]
    fn the_heaviest_length_wins_and_stray_readings_lower_confidence() {
        let clean = vote(&[ballot("ABC123", 0.8), ballot("ABC123", 0.8)], None).expect("a vote");
        let mixed = vote(&[ballot("ABC123", 0.8), ballot("ABC123", 0.8), ballot("MDABC123", 0.5)], None).expect("a vote");
        assert_eq!(mixed.text, "ABC123");
        assert!(mixed.confidence < clean.confidence);
        assert!(vote(&[], None).is_none());
    }
}
