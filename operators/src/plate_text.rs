//! From a recognizer's reading to plate texts: the readings a crop's
//! characters allow under the plate grammars, each with a score.
//!
//! A reading either fits a format of [`borderflow_types::plate_grammar`] as
//! read, or fits one after a few repairs: a character in a letter position
//! that is read as a digit (or the other way round) is replaced by the
//! recognizer's runner-up if that fits, else by its usual look-alike (0↔O,
//! 1↔I, 8↔B, 5↔S, 2↔Z, 6↔G, 4↔A, 7↔T), at the price of a low per-character
//! probability. Up to two letters at the front (the country strip "MD", "UA")
//! may be dropped, and so may one character where a format allows a mark
//! between a plate's halves (a dash or state graphic on US plates, see
//! [`PlateFormat::gap`]); each character left out costs [`DROP_FACTOR`].
//! The score is the geometric mean of per-character
//! probabilities; a reading no grammar accepts keeps its raw score times
//! [`UNKNOWN_FORMAT_FACTOR`], so plates of countries without a grammar
//! (the US test set) are still read. [`second_opinion`] scores the texts of
//! a crop that two recognizers read by how well both explain them.

use borderflow_types::plate_grammar::{GAP_MARKS, PlateFormat, STACKED, formats_for, matches};
use borderflow_models::{RecognizedChar, TextLine};

/// Score factor for a reading that fits no known format.
pub const UNKNOWN_FORMAT_FACTOR: f32 = 0.75;
/// Probability given to a look-alike substitution the recognizer did not offer.
const LOOK_ALIKE_PROBABILITY: f32 = 0.05;
/// Repairs allowed in one reading.
const MAX_REPAIRS: usize = 2;
/// Score factor per character left out (a country strip's, a mark's).
const DROP_FACTOR: f32 = 0.93;

/// One interpretation of a crop's reading.
#[derive(Clone, Debug)]
pub struct PlateText {
    pub text: String,
    /// The format it fits, if any.
    pub format: Option<&'static PlateFormat>,
    /// 0..1
    pub score: f32,
    /// What the crop's characters are taken to be: `text` with the
    /// characters it leaves out (a country strip, a mark between a US
    /// plate's halves) at their places.
    pub read: String,
    /// The grammar's part of `score`: the camera country's preference,
    /// characters left out, no known format.
    pub factor: f32,
}

/// The interpretations of `line`, best first, at most one per text.
pub fn plate_texts(line: &TextLine, prefer_country: Option<&str>) -> Vec<PlateText> {
    let n = line.chars.len();
    let mut out: Vec<PlateText> = Vec::new();
    if n == 0 {
        return out;
    }
    let raw_score = geometric_mean(line.chars.iter().map(|c| c.confidence));
    let raw_format = best_format(&line.text, prefer_country);
    let raw_factor = match raw_format {
        None => UNKNOWN_FORMAT_FACTOR,
        Some(format) => preference(format, prefer_country),
    };
    out.push(PlateText { text: line.text.clone(), format: raw_format, score: raw_score * raw_factor, read: line.text.clone(), factor: raw_factor });
    // Only letters are dropped, and only at the front: that is where the
    // country strip is, and a digit there belongs to the number (US plates).
    let droppable = line.chars.iter().take(2).take_while(|c| c.ch.is_ascii_alphabetic()).count();
    for dropped in 0..=droppable {
        let kept: Vec<usize> = (dropped..n).collect();
        // Home-only formats (US states) have no country strip to drop.
        for format in formats_for(prefer_country).filter(|f| f.pattern.len() == n - dropped && !(dropped > 0 && f.home_only)) {
            out.extend(fit(line, format, &kept, dropped, None, prefer_country));
        }
    }
    // A mark between a plate's halves read as a thin character. The mark
    // was seen as surely as the character was read, so its confidence
    // still counts: leaving out a doubtful `1` of `ABC1234` must not make
    // `ABC234` the surer reading.
    for format in formats_for(prefer_country).filter(|f| f.pattern.len() + 1 == n) {
        if let Some(gap) = format.gap.filter(|&gap| GAP_MARKS.contains(line.chars[gap].ch)) {
            let kept: Vec<usize> = (0..n).filter(|&i| i != gap).collect();
            out.extend(fit(line, format, &kept, 1, Some(gap), prefer_country));
        }
    }
    best_first(out)
}

/// The interpretations of a plate printed on several lines, given each
/// line's reading, top first, best first. For each stacked layout with as
/// many lines ([`borderflow_types::plate_grammar::STACKED`]) whose lines
/// were read with as many characters as it prints (the top line may carry
/// up to two more letters in front: a country strip beside it), the
/// characters are put in registration order and read as one line by
/// [`plate_texts`], repairs included; only readings that fit the layout's
/// format are kept. `read` is the characters in that order.
pub fn stacked_plate_texts(lines: &[&TextLine], prefer_country: Option<&str>) -> Vec<PlateText> {
    let mut out = Vec::new();
    for layout in STACKED.iter().filter(|l| l.lines.len() == lines.len()) {
        let Some(format) = layout.format() else { continue };
        let top_extra = lines[0].chars.len().saturating_sub(layout.lines[0].len());
        let leading_letters = lines[0].chars.iter().take(top_extra).all(|c| c.ch.is_ascii_alphabetic());
        if top_extra > 2 || !leading_letters {
            continue;
        }
        let counts_fit = lines.iter().zip(layout.lines).enumerate().all(|(k, (line, printed))| {
            line.chars.len() == printed.len() + if k == 0 { top_extra } else { 0 }
        });
        if !counts_fit {
            continue;
        }
        let mut chars: Vec<Option<RecognizedChar>> = vec![None; layout.pattern.len()];
        for (k, (line, printed)) in lines.iter().zip(layout.lines).enumerate() {
            let skip = if k == 0 { top_extra } else { 0 };
            for (c, &at) in line.chars[skip..].iter().zip(printed.iter()) {
                chars[at] = Some(c.clone());
            }
        }
        let chars: Vec<RecognizedChar> = chars.into_iter().flatten().collect();
        let composed = TextLine { text: chars.iter().map(|c| c.ch).collect(), chars, steps: Vec::new() };
        let dropped = DROP_FACTOR.powi(top_extra as i32);
        // The layout's format, or a more specific one of the same pattern
        // that the reading fits first (Moldova's `H` series is `LLLDDD` too).
        out.extend(plate_texts(&composed, prefer_country).into_iter().filter(|t| t.format.is_some() && matches(format, &t.text)).map(|mut t| {
            t.score *= dropped;
            t.factor *= dropped;
            t
        }));
    }
    best_first(out)
}

/// `texts` best first, each text once (its best score).
fn best_first(mut texts: Vec<PlateText>) -> Vec<PlateText> {
    texts.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut seen = std::collections::HashSet::new();
    texts.retain(|t| seen.insert(t.text.clone()));
    texts
}

/// `line` read as `format` from the characters at `kept` (the others, `left_out`
/// of them, dropped; `mark`'s confidence counts in the score all the same),
/// with up to [`MAX_REPAIRS`] repairs; `None` if it does not fit or fits as
/// read with nothing left out (the raw reading says that).
fn fit(line: &TextLine, format: &'static PlateFormat, kept: &[usize], left_out: usize, mark: Option<usize>, prefer_country: Option<&str>) -> Option<PlateText> {
    let mut read: Vec<char> = line.chars.iter().map(|c| c.ch).collect();
    let mut text = String::with_capacity(kept.len());
    let mut probabilities = Vec::with_capacity(kept.len());
    let (mut repairs, mut o_for_0) = (0, 0);
    for (&i, slot) in kept.iter().zip(format.pattern.chars()) {
        let c = &line.chars[i];
        let fits = |ch: char| format.allows(slot, ch);
        let (ch, p) = if fits(c.ch) {
            (c.ch, c.confidence)
        } else {
            // O and 0 are the likeliest confusion of all (`AB 7107 OO`
            // read `AB710700`): up to MAX_REPAIRS of them come on top of
            // the other repairs, at their probability all the same.
            if matches!(c.ch, 'O' | '0') && o_for_0 < MAX_REPAIRS {
                o_for_0 += 1;
            } else {
                repairs += 1;
            }
            if let Some((alt, p)) = c.runner_up.filter(|(alt, _)| fits(*alt)) {
                (alt, p.max(LOOK_ALIKE_PROBABILITY))
            } else {
                (look_alike(c.ch).filter(|&alt| fits(alt))?, LOOK_ALIKE_PROBABILITY)
            }
        };
        text.push(ch);
        read[i] = ch;
        probabilities.push(p);
    }
    if repairs > MAX_REPAIRS || (repairs + o_for_0 == 0 && left_out == 0) {
        return None;
    }
    debug_assert!(matches(format, &text));
    probabilities.extend(mark.map(|i| line.chars[i].confidence));
    let factor = DROP_FACTOR.powi(left_out as i32) * preference(format, prefer_country);
    let score = geometric_mean(probabilities.into_iter()) * factor;
    Some(PlateText { text, format: Some(format), score, read: read.into_iter().collect(), factor })
}

/// The interpretations of a crop that two recognizers of different
/// training have read, best first, one per text. Each recognizer proposes
/// its [`plate_texts`] (its best three; `first_texts` are `first`'s, as
/// the caller already has them); every proposal is scored by how well
/// both recognizers' outputs explain it (the geometric mean of their
/// [`TextLine::likelihood`]s of the characters it takes the crop to show,
/// [`PlateText::read`]; [`TextLine::likelihood_folded`] where its format
/// prints O and 0 alike) times the grammar's factor, so a confusion of
/// one (W read as N) is outvoted when the other read the character right.
/// The scores are then scaled so the best keeps `first`'s own best score:
/// the second opinion decides what a crop says, not which crop of the
/// picture is the plate (measured: letting it decide both lost plates to
/// other text both read with confidence).
pub fn second_opinion(first: &TextLine, first_texts: Vec<PlateText>, second: &TextLine, prefer_country: Option<&str>) -> Vec<PlateText> {
    let own_best = first_texts.first().map_or(0.0, |t| t.score);
    let mut out: Vec<PlateText> = Vec::new();
    for texts in [first_texts, plate_texts(second, prefer_country)] {
        for mut text in texts.into_iter().take(3) {
            // Where the format prints O and 0 alike, the slot decides which.
            let likelihood = if text.format.is_some_and(|f| f.o_is_zero) {
                (first.likelihood_folded(&text.read) * second.likelihood_folded(&text.read)).sqrt()
            } else {
                (first.likelihood(&text.read) * second.likelihood(&text.read)).sqrt()
            };
            text.score = likelihood * text.factor;
            out.push(text);
        }
    }
    let mut out = best_first(out);
    let best = out.first().map_or(0.0, |t| t.score);
    if best > 0.0 {
        for text in &mut out {
            text.score = (text.score * own_best / best).min(1.0);
        }
    }
    out
}

/// Score factor of a format: a camera's own country's formats win ties
/// with those of other countries (two plates read equally well, one
/// Ukrainian, one Polish-shaped, at a Ukrainian post).
fn preference(format: &PlateFormat, prefer_country: Option<&str>) -> f32 {
    if prefer_country.is_none_or(|country| country == format.country) { 1.0 } else { 0.98 }
}

/// The format `text` fits, preferring the camera's country.
fn best_format(text: &str, prefer_country: Option<&str>) -> Option<&'static PlateFormat> {
    let mut fitting = formats_for(prefer_country).filter(|f| matches(f, text));
    let first = fitting.next()?;
    Some(std::iter::once(first).chain(fitting).find(|f| Some(f.country) == prefer_country).unwrap_or(first))
}

fn look_alike(c: char) -> Option<char> {
    Some(match c {
        '0' => 'O',
        'O' | 'D' | 'Q' | 'U' => '0',
        '1' => 'I',
        'I' | 'L' | 'J' => '1',
        '8' => 'B',
        'B' => '8',
        '5' => 'S',
        'S' => '5',
        '2' => 'Z',
        'Z' => '2',
        '6' => 'G',
        'G' => '6',
        '4' => 'A',
        'A' => '4',
        '7' => 'T',
        'T' => '7',
        _ => return None,
    })
}

fn geometric_mean(probabilities: impl Iterator<Item = f32>) -> f32 {
    let (mut log_sum, mut n) = (0f32, 0usize);
    for p in probabilities {
        log_sum += p.max(1e-6).ln();
        n += 1;
    }
    if n == 0 { 0.0 } else { (log_sum / n as f32).exp() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderflow_models::RecognizedChar;

    fn line(text: &str, confidence: f32) -> TextLine {
        TextLine {
            text: text.to_string(),
            chars: text.chars().map(|ch| RecognizedChar { ch, confidence, runner_up: None }).collect(),
            steps: Vec::new(),
        }
    }

    #[test]
    fn a_reading_that_fits_a_grammar_is_kept_as_read() {
        let texts = plate_texts(&line("ABC123", 0.95), Some("MD"));
        assert_eq!(texts[0].text, "ABC123");
        assert_eq!(texts[0].format.map(|f| f.country), Some("MD"));
    }

    #[test]
    fn a_letter_read_as_a_digit_is_repaired_to_fit_the_grammar() {
        // Ukrainian AA 1234 BB with the first B read as 8.
        let mut reading = line("AA12348B", 0.95);
        reading.chars[6].runner_up = Some(('B', 0.3));
        let texts = plate_texts(&reading, Some("UA"));
        assert_eq!(texts[0].text, "AA1234BB");
        assert_eq!(texts[0].format.map(|f| f.country), Some("UA"));
    }

    #[test]
    fn the_camera_country_wins_a_tie() {
        // RP69881 is Polish-shaped, AT1515CK Ukrainian; both read perfectly.
        let polish = plate_texts(&line("RP69881", 1.0), Some("UA"));
        let ukrainian = plate_texts(&line("AT1515CK", 1.0), Some("UA"));
        assert!(ukrainian[0].score > polish[0].score, "{ukrainian:?} {polish:?}");
        // Without a camera country neither is preferred.
        assert_eq!(plate_texts(&line("RP69881", 1.0), None)[0].score, 1.0);
    }

    #[test]
    fn only_a_us_camera_offers_a_california_reading() {
        // 7EAV033 read as ZEAV033, the Z in doubt with 7 a close second:
        // a US camera offers the repaired California plate (crops of the
        // same plate then vote it up); elsewhere it fits no format.
        let mut reading = line("ZEAV033", 0.95);
        reading.chars[0].confidence = 0.4;
        reading.chars[0].runner_up = Some(('7', 0.38));
        let us = plate_texts(&reading, Some("US"));
        let california = us.iter().find(|t| t.text == "7EAV033").expect("offered");
        assert_eq!(california.format.map(|f| f.name), Some("California (since 1980)"));
        for camera in [Some("MD"), Some("UA"), None] {
            assert!(plate_texts(&reading, camera).iter().all(|t| t.text != "7EAV033"), "{camera:?}");
        }
    }

    /// A line whose greedy reading is `reads`: per character one step where
    /// it has probability `p` and `other` the rest, then a blank step.
    fn line_with_steps(reads: &[(char, f32, char)]) -> TextLine {
        let class = |c: char| borderflow_models::PLATE_ALPHABET.find(c).map(|i| i + 1).expect("plate character");
        let mut steps = Vec::new();
        let mut chars = Vec::new();
        for &(ch, p, other) in reads {
            let mut step = [0f32; 37];
            step[class(ch)] = p;
            step[class(other)] = 1.0 - p;
            steps.push(step);
            let mut blank = [0f32; 37];
            blank[0] = 1.0;
            steps.push(blank);
            chars.push(RecognizedChar { ch, confidence: p, runner_up: Some((other, 1.0 - p)) });
        }
        TextLine { text: chars.iter().map(|c| c.ch).collect(), chars, steps }
    }

    #[test]
    fn a_second_opinion_outvotes_a_confusion_and_keeps_the_crops_score() {
        // The first recognizer reads WTC249 as NTC249 (W its runner-up); the
        // second reads the W, less sure of the C.
        let certain = |c: char| (c, 0.97, if c == '2' { 'Z' } else { 'O' });
        let mut first: Vec<(char, f32, char)> = "TC249".chars().map(certain).collect();
        first.insert(0, ('N', 0.6, 'W'));
        let mut second: Vec<(char, f32, char)> = "TC249".chars().map(certain).collect();
        second.insert(0, ('W', 0.8, 'N'));
        second[2] = ('C', 0.7, 'O');
        let (first, second) = (line_with_steps(&first), line_with_steps(&second));
        let alone = plate_texts(&first, Some("US"));
        assert_eq!(alone[0].text, "NTC249");
        let texts = second_opinion(&first, alone.clone(), &second, Some("US"));
        assert_eq!(texts[0].text, "WTC249", "{texts:?}");
        assert_eq!(texts[1].text, "NTC249", "{texts:?}");
        // The crop competes with the others of the picture as it did alone.
        assert!((texts[0].score - alone[0].score).abs() < 1e-6, "{} vs {}", texts[0].score, alone[0].score);
    }

    #[test]
    fn the_format_decides_between_o_and_0() {
        // Both recognizers read Missouri's SH0-R7X as SHOLR7X, sure of the
        // O: O and 0 being one glyph on the plate, the format decides.
        let sure = |c: char| (c, 0.97, if c == 'O' { '0' } else { 'Q' });
        let reads: Vec<(char, f32, char)> = "SHOLR7X".chars().map(sure).collect();
        let (first, second) = (line_with_steps(&reads), line_with_steps(&reads));
        let texts = second_opinion(&first, plate_texts(&first, Some("US")), &second, Some("US"));
        assert_eq!(texts[0].text, "SH0R7X", "{texts:?}");
        assert_eq!(texts[0].format.map(|f| f.name), Some("Missouri (since 1997)"));
        // Where a letter stands, O stays a letter.
        let reads: Vec<(char, f32, char)> = "ABO123".chars().map(sure).collect();
        let (first, second) = (line_with_steps(&reads), line_with_steps(&reads));
        assert_eq!(second_opinion(&first, plate_texts(&first, Some("US")), &second, Some("US"))[0].text, "ABO123");
    }

    #[test]
    fn a_mark_between_a_us_plates_halves_is_left_out() {
        // Missouri's SH0-R7X with its dash read as L (and its 0 as O), New
        // York's ABC-1234 with its dash read as I.
        let mut missouri = line("SHOLR7X", 0.9);
        missouri.chars[2].runner_up = Some(('0', 0.4));
        let texts = plate_texts(&missouri, Some("US"));
        let read = texts.iter().find(|t| t.text == "SH0R7X").expect("offered");
        assert_eq!(read.format.map(|f| f.name), Some("Missouri (since 1997)"));
        assert_eq!(read.read, "SH0LR7X");
        let texts = plate_texts(&line("ABCI1234", 0.9), Some("US"));
        assert_eq!((texts[0].text.as_str(), texts[0].read.as_str()), ("ABC1234", "ABCI1234"));
        // A plate whose number starts with a doubtful 1 keeps it: the
        // reading as seen fits a format, and the left-out 1 still counts.
        let mut doubtful = line("ABC1234", 0.95);
        doubtful.chars[3].confidence = 0.4;
        let texts = plate_texts(&doubtful, Some("US"));
        assert_eq!(texts[0].text, "ABC1234", "{texts:?}");
        assert!(texts.iter().any(|t| t.text == "ABC234"), "{texts:?}");
        // Away from the US no format has such a mark.
        for camera in [Some("MD"), Some("UA"), None] {
            assert!(plate_texts(&line("ABCI1234", 0.9), camera).iter().all(|t| t.text != "ABC1234"), "{camera:?}");
        }
    }

    #[test]
    fn stacked_lines_are_read_in_their_layouts_order() {
        // Ukraine's two-line plate: region and series on top, number below.
        let texts = stacked_plate_texts(&[&line("BHCE", 0.95), &line("3978", 0.95)], Some("UA"));
        assert_eq!(texts[0].text, "BH3978CE");
        assert_eq!(texts[0].format.map(|f| f.country), Some("UA"));
        // Its three-line motorcycle plate, the flag's UA read in front of the region.
        let texts = stacked_plate_texts(&[&line("UABI", 0.9), &line("7996", 0.9), &line("AA", 0.9)], Some("UA"));
        assert_eq!(texts[0].text, "BI7996AA");
        // Moldova's square plate reads line after line, a digit read as a letter repaired.
        let mut bottom = line("1Z3", 0.9);
        bottom.chars[1].runner_up = Some(('2', 0.2));
        let texts = stacked_plate_texts(&[&line("ABC", 0.9), &bottom], Some("MD"));
        assert_eq!((texts[0].text.as_str(), texts[0].format.map(|f| f.country)), ("ABC123", Some("MD")));
        // Two lines of other text fit no layout.
        assert!(stacked_plate_texts(&[&line("SALE", 0.9), &line("CALLNOW", 0.9)], None).is_empty());
        assert!(stacked_plate_texts(&[&line("ABC", 0.9)], None).is_empty());
    }

    #[test]
    fn o_and_0_swaps_come_on_top_of_two_other_repairs() {
        // AB 7107 OO read with its 7 as T and its OO as 00.
        let texts = plate_texts(&line("ABT10700", 0.9), Some("UA"));
        assert!(texts.iter().any(|t| t.text == "AB7107OO"), "{texts:?}");
        // Three repairs of other kinds stay too many.
        assert!(plate_texts(&line("A8T1Z7BB", 0.9), Some("UA")).iter().all(|t| t.text != "AB7127BB"));
    }

    #[test]
    fn the_country_strip_is_dropped() {
        let texts = plate_texts(&line("UAAA1234BB", 0.9), Some("UA"));
        assert_eq!(texts[0].text, "AA1234BB");
        assert_eq!(texts[0].read, "UAAA1234BB");
    }
}
