//! Plate grammars: which country's registration formats a normalised plate
//! fits. The scenario generator and the recogniser's decoder both use them.
//!
//! A format is a pattern over the normalised key: `L` is a letter of the
//! format's alphabet, `D` a digit, a lower-case letter stands for its
//! upper-case self (so `d` is a literal D), and any other character stands
//! for itself. Within a country the more specific formats (fixed letters)
//! come first; across countries the order is the order in which ties are
//! broken when the camera's country does not decide.
//!
//! Some formats are *home only*: US state formats are so general (three
//! letters and four digits, …) that abroad they would claim plates of every
//! country, so they are used only by cameras standing in their country
//! ([`formats_for`]). Their plates carry no country strip. The other way
//! round, a camera in such a country considers its own formats only: a
//! European plate is rare on a US road, and European formats there would
//! claim misread US plates (a Californian `4GLS168` read `LGLS168` fits a
//! Moldovan district format).
//!
//! Many US plates split their number in two halves with a dash, a dot or a
//! state graphic (Missouri's `SH0-R7X`, New York's `ABC-1234`; OpenALPR's
//! published US patterns carry such a slot for Arizona, Florida,
//! Mississippi, Oregon and Utah). The mark is no part of the registration,
//! but a recogniser restricted to letters and digits reads it as one of the
//! thin characters ([`GAP_MARKS`]). A format's [`PlateFormat::gap`] says
//! where such a mark may stand, so a reading one character too long may be
//! read without it.

/// One registration format of one country.
#[derive(Clone, Copy, Debug)]
pub struct PlateFormat {
    /// ISO 3166 alpha-2 code of the issuing country.
    pub country: &'static str,
    /// What the format is ("standard since 2015", "diplomatic", …).
    pub name: &'static str,
    pub pattern: &'static str,
    /// Letters allowed where the pattern has `L`.
    pub letters: &'static str,
    /// Used only by cameras in `country` (see the module doc).
    pub home_only: bool,
    /// The number of characters before a dash or graphic that may split
    /// the plate's halves (see the module doc); `None`: no such mark.
    pub gap: Option<usize>,
    /// O and 0 are printed alike, so which of the two stands at a place is
    /// the pattern's call (a letter or a digit slot), not the look of it.
    /// US plates (several states leave O out of their letter series for
    /// that reason); European fonts draw the 0 narrower.
    pub o_is_zero: bool,
}

impl PlateFormat {
    /// Whether `c` may stand at a position whose pattern character is `slot`.
    pub fn allows(&self, slot: char, c: char) -> bool {
        match slot {
            'L' => self.letters.contains(c),
            'D' => c.is_ascii_digit(),
            literal if literal.is_ascii_lowercase() => c == literal.to_ascii_uppercase(),
            literal => c == literal,
        }
    }
}

/// What a recogniser makes of a dash or a slim graphic between a plate's
/// halves: its thin characters.
pub const GAP_MARKS: &str = "1IJLT";

const LATIN: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// The twelve Cyrillic letters of Ukrainian plates, written as their Latin look-alikes.
pub const UA_LETTERS: &str = "ABCEHIKMOPTX";
/// Russian plates: the twelve Cyrillic letters that look Latin (У as Y).
const RU_LETTERS: &str = "ABEKMHOPCTYX";
/// Belarusian plates use Latin letters that exist in Cyrillic too.
const BY_LETTERS: &str = "ABEIKMHOPCTX";

const fn format(country: &'static str, name: &'static str, pattern: &'static str, letters: &'static str) -> PlateFormat {
    PlateFormat { country, name, pattern, letters, home_only: false, gap: None, o_is_zero: false }
}

const fn home(country: &'static str, name: &'static str, pattern: &'static str) -> PlateFormat {
    PlateFormat { country, name, pattern, letters: LATIN, home_only: true, gap: None, o_is_zero: true }
}

/// A home-only format whose halves a dash or graphic may split after `gap` characters.
const fn home_split(country: &'static str, name: &'static str, pattern: &'static str, gap: usize) -> PlateFormat {
    PlateFormat { country, name, pattern, letters: LATIN, home_only: true, gap: Some(gap), o_is_zero: true }
}

/// The formats known to the engine, most specific first within a country.
#[rustfmt::skip]
pub const FORMATS: &[PlateFormat] = &[
    // Moldova. Special series first: they also fit the general patterns.
    format("MD", "president", "RMDDDD", LATIN),
    format("MD", "government (RM + authority)", "RMLDDD", LATIN),
    format("MD", "police (MAI)", "MAIDDDD", LATIN),
    format("MD", "police (MAI)", "MAIDDD", LATIN),
    format("MD", "carabinieri (MIC)", "MICDDDD", LATIN),
    format("MD", "carabinieri (MIC)", "MICDDD", LATIN),
    format("MD", "security service", "SPDDD", LATIN),
    format("MD", "army", "FADDDD", LATIN),
    format("MD", "border police", "FPDDDD", LATIN),
    format("MD", "border police (DG)", "dGDDDD", LATIN),
    format("MD", "diplomatic (CD)", "CdDDDLL", LATIN),
    format("MD", "diplomatic (CD)", "CdDDDL", LATIN),
    format("MD", "diplomatic staff (TC)", "TCDDDLL", LATIN),
    format("MD", "diplomatic staff (TC)", "TCDDDL", LATIN),
    format("MD", "diplomatic service (TS)", "TSDDDLL", LATIN),
    format("MD", "diplomatic service (TS)", "TSDDDL", LATIN),
    format("MD", "diplomatic administration (CA)", "CADDDLL", LATIN),
    format("MD", "diplomatic administration (CA)", "CADDDL", LATIN),
    format("MD", "diplomatic", "CDDDDDD", LATIN),
    format("MD", "foreigner (H series)", "HLLDDD", LATIN),
    format("MD", "temporary (H series)", "HDDDD", LATIN),
    format("MD", "army (old)", "ADDDD", LATIN),
    format("MD", "standard (2015)", "LLLDDD", LATIN),
    format("MD", "district (1992-2015)", "LLLLDDD", LATIN),
    // Ukraine: Cyrillic look-alikes only.
    format("UA", "standard (2004, 2015)", "LLDDDDLL", UA_LETTERS),
    format("UA", "diplomatic", "DDDCDDDD", UA_LETTERS),
    format("UA", "transit (T)", "TDLLDDDD", UA_LETTERS),
    format("UA", "transit", "DDLLDDDD", UA_LETTERS),
    format("UA", "military", "DDDDLD", UA_LETTERS),
    format("UA", "military", "DDDDLL", UA_LETTERS),
    format("UA", "standard (1995) with region", "DDDDDDDLL", UA_LETTERS),
    format("UA", "standard (1995)", "DDDDDLL", UA_LETTERS),
    // Neighbours and common European formats.
    format("RO", "standard", "LLDDLLL", LATIN),
    format("RO", "standard, three digits", "LLDDDLLL", LATIN),
    format("RO", "Bucharest", "LDDDLLL", LATIN),
    format("RO", "Bucharest, two digits", "LDDLLL", LATIN),
    format("PL", "standard", "LLDDDDD", LATIN),
    format("PL", "standard", "LLDDDDL", LATIN),
    format("PL", "three-letter district", "LLLDDDDD", LATIN),
    format("PL", "three-letter district", "LLLDDDDL", LATIN),
    format("BG", "standard", "LLDDDDLL", "ABEKMHOPCTYX"),
    format("BG", "one-letter province", "LDDDDLL", "ABEKMHOPCTYX"),
    format("LT", "standard", "LLLDDD", LATIN),
    format("DE", "standard", "LLLDDDD", LATIN),
    format("DE", "standard", "LLLLDDDD", LATIN),
    format("HU", "standard (2022)", "LLLLDDD", LATIN),
    format("CZ", "standard", "DLLDDDD", LATIN),
    format("FR", "standard (2009)", "LLDDDLL", LATIN),
    format("IT", "standard", "LLDDDLL", LATIN),
    format("SK", "standard", "LLDDDLL", LATIN),
    format("ES", "standard (2000)", "DDDDLLL", "BCDFGHJKLMNPRSTVWXYZ"),
    format("GR", "standard", "LLLDDDD", "ABEHIKMNOPTXYZ"),
    format("TR", "standard", "DDLDDDD", LATIN),
    format("TR", "standard", "DDLLDDD", LATIN),
    format("TR", "standard", "DDLLLDD", LATIN),
    format("BY", "standard", "DDDDLLD", BY_LETTERS),
    format("RU", "standard", "LDDDLLDD", RU_LETTERS),
    format("RU", "standard, three-digit region", "LDDDLLDDD", RU_LETTERS),
    format("GE", "standard", "LLDDDLL", LATIN),
    // United States, home only: the states' standard series that most
    // plates on the road follow (vanity plates follow none). California's
    // number runs on; the others' halves may be split by a mark.
    home("US", "California (since 1980)", "DLLLDDD"),
    home_split("US", "three letters, four digits (NY, PA, TX, OH, GA, …)", "LLLDDDD", 3),
    home_split("US", "three letters, three digits", "LLLDDD", 3),
    home_split("US", "three digits, three letters", "DDDLLL", 3),
    home_split("US", "Missouri (since 1997)", "LLDLDL", 3),
    home_split("US", "New Jersey, Texas (letter, two digits, three letters)", "LDDLLL", 3),
    home("US", "Illinois (letter, six digits)", "LDDDDDD"),
    home("US", "Illinois (two letters, five digits)", "LLDDDDD"),
    home_split("US", "Florida, Colorado (four letters, two digits)", "LLLLDD", 3),
    home("US", "Massachusetts, Michigan (digit, three letters, two digits)", "DLLLDD"),
    home("US", "Maryland (digit, two letters, four digits)", "DLLDDDD"),
];

/// How a plate printed on two or three lines (square plates of imported
/// cars, motorcycles, trailers, tractors) spells its registration: each
/// line, top to bottom, prints some of the registration's characters, left
/// to right. Most countries print the registration in reading order, line
/// after line; Ukraine's two-line plate prints the region and series
/// letters on top and the number below (`BH CE` over `3978` is
/// `BH3978CE`), its three-line motorcycle plate the region, the number and
/// the series on one line each.
#[derive(Clone, Copy, Debug)]
pub struct StackedLayout {
    pub country: &'static str,
    pub name: &'static str,
    /// The registration's pattern, one of [`FORMATS`] of `country`.
    pub pattern: &'static str,
    /// Per line, top first, the registration's positions it prints.
    pub lines: &'static [&'static [usize]],
}

impl StackedLayout {
    /// The registration format the layout prints.
    pub fn format(&self) -> Option<&'static PlateFormat> {
        FORMATS.iter().find(|f| f.country == self.country && f.pattern == self.pattern)
    }
}

/// The stacked layouts known to the engine.
#[rustfmt::skip]
pub const STACKED: &[StackedLayout] = &[
    StackedLayout { country: "MD", name: "square (2015)", pattern: "LLLDDD", lines: &[&[0, 1, 2], &[3, 4, 5]] },
    StackedLayout { country: "UA", name: "two-line (2004, 2015)", pattern: "LLDDDDLL", lines: &[&[0, 1, 6, 7], &[2, 3, 4, 5]] },
    StackedLayout { country: "UA", name: "three-line motorcycle (2015)", pattern: "LLDDDDLL", lines: &[&[0, 1], &[2, 3, 4, 5], &[6, 7]] },
    StackedLayout { country: "UA", name: "two-line military", pattern: "DDDDLL", lines: &[&[0, 1, 2, 3], &[4, 5]] },
    StackedLayout { country: "RO", name: "square", pattern: "LLDDLLL", lines: &[&[0, 1, 2, 3], &[4, 5, 6]] },
    StackedLayout { country: "RO", name: "square, Bucharest", pattern: "LDDDLLL", lines: &[&[0, 1, 2, 3], &[4, 5, 6]] },
    StackedLayout { country: "RO", name: "square, Bucharest, two digits", pattern: "LDDLLL", lines: &[&[0, 1, 2], &[3, 4, 5]] },
    StackedLayout { country: "PL", name: "two-line", pattern: "LLDDDDD", lines: &[&[0, 1], &[2, 3, 4, 5, 6]] },
    StackedLayout { country: "PL", name: "two-line", pattern: "LLDDDDL", lines: &[&[0, 1], &[2, 3, 4, 5, 6]] },
    StackedLayout { country: "PL", name: "two-line, three-letter district", pattern: "LLLDDDDD", lines: &[&[0, 1, 2], &[3, 4, 5, 6, 7]] },
];

/// The formats a camera in `camera_country` considers: every format but
/// the home-only formats of other countries; a camera in a country with
/// home-only formats (the US) considers its own formats only.
pub fn formats_for(camera_country: Option<&str>) -> impl Iterator<Item = &'static PlateFormat> + '_ {
    // A country with home-only formats lies outside the region of the
    // others (Europe): its cameras consider its own formats only.
    let own_only = camera_country.is_some_and(|c| FORMATS.iter().any(|f| f.home_only && f.country == c));
    FORMATS
        .iter()
        .filter(move |f| if own_only { Some(f.country) == camera_country } else { !f.home_only || Some(f.country) == camera_country })
}

/// Whether `norm` (a [`crate::plate_norm`] key) fits `format`.
pub fn matches(format: &PlateFormat, norm: &str) -> bool {
    norm.len() == format.pattern.len() && norm.chars().zip(format.pattern.chars()).all(|(c, slot)| format.allows(slot, c))
}

/// The formats `norm` fits, in [`FORMATS`] order, home-only formats aside.
pub fn matching_formats(norm: &str) -> impl Iterator<Item = &'static PlateFormat> + '_ {
    formats_for(None).filter(move |f| matches(f, norm))
}

/// The country of the first format `norm` fits, preferring `prefer` (the
/// country the camera stands in) when several countries' formats fit.
pub fn plate_country(norm: &str, prefer: Option<&str>) -> Option<&'static str> {
    let mut first = None;
    for format in formats_for(prefer).filter(|f| matches(f, norm)) {
        if Some(format.country) == prefer {
            return Some(format.country);
        }
        first.get_or_insert(format.country);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_formats_are_recognised() {
        assert_eq!(plate_country("ABC123", None), Some("MD"));
        assert_eq!(plate_country("AI5255EI", None), Some("UA"));
        assert_eq!(plate_country("B123ABC", None), Some("RO"));
        assert_eq!(plate_country("WA12345", None), Some("PL"));
    }

    #[test]
    fn ukrainian_plates_only_use_latin_look_alikes() {
        // F and Z have no Cyrillic look-alike on Ukrainian plates.
        assert!(!matching_formats("AF1234ZZ").any(|f| f.country == "UA"));
    }

    fn names(norm: &str) -> Vec<(&'static str, &'static str)> {
        matching_formats(norm).map(|f| (f.country, f.name)).collect()
    }

    #[test]
    fn moldovan_special_series() {
        assert_eq!(names("RMG012")[0], ("MD", "government (RM + authority)"));
        assert_eq!(names("RM0001")[0], ("MD", "president"));
        assert_eq!(names("MAI1234")[0], ("MD", "police (MAI)"));
        assert_eq!(names("FA1234")[0], ("MD", "army"));
        assert_eq!(names("DG1234")[0], ("MD", "border police (DG)"));
        assert_eq!(names("CD123A")[0], ("MD", "diplomatic (CD)"));
        assert_eq!(names("CD123AA")[0], ("MD", "diplomatic (CD)"));
        assert_eq!(names("TS045B")[0], ("MD", "diplomatic service (TS)"));
        assert_eq!(names("H1234")[0], ("MD", "temporary (H series)"));
        assert_eq!(names("HAB123")[0], ("MD", "foreigner (H series)"));
        assert_eq!(names("CAB123")[0], ("MD", "standard (2015)"));
        assert_eq!(names("BLAC002")[0], ("MD", "district (1992-2015)"));
        // "CD" is literal: a digit in its place is no diplomatic plate.
        assert!(!names("C0123A").iter().any(|(c, _)| *c == "MD"));
    }

    #[test]
    fn ukrainian_formats() {
        assert_eq!(names("AC8029EM")[0], ("UA", "standard (2004, 2015)"));
        assert_eq!(names("T1CP5140")[0], ("UA", "transit (T)"));
        assert_eq!(names("0004E6")[0], ("UA", "military"));
        assert_eq!(names("84022PE")[0], ("UA", "standard (1995)"));
        assert_eq!(names("0784022PE")[0], ("UA", "standard (1995) with region"));
        assert_eq!(names("123C4567")[0], ("UA", "diplomatic"));
        // The military letter is one of the twelve look-alikes.
        assert!(!names("0004F6").iter().any(|(c, _)| *c == "UA"));
    }

    #[test]
    fn other_european_formats() {
        assert_eq!(plate_country("AB123CD", None), Some("FR"));
        assert_eq!(plate_country("AB123CD", Some("SK")), Some("SK"));
        assert_eq!(plate_country("1234BCD", None), Some("ES"));
        assert_eq!(plate_country("1AB2345", None), Some("CZ"));
        assert_eq!(plate_country("1234AB7", None), Some("BY"));
        assert_eq!(plate_country("A123BC77", None), Some("RU"));
        assert_eq!(plate_country("IS123ABC", None), Some("RO"));
        assert_eq!(plate_country("WPI12345", None), Some("PL"));
        // Vowels are not issued on Spanish plates.
        assert_eq!(plate_country("1234ABC", None), None);
    }

    #[test]
    fn the_camera_country_wins_ties() {
        // LLLDDD is Moldovan and Lithuanian.
        assert_eq!(plate_country("ABC123", Some("LT")), Some("LT"));
        assert_eq!(plate_country("ABC123", Some("UA")), Some("MD"));
    }

    #[test]
    fn home_only_formats_count_only_at_home() {
        // California's 1ABC234 fits no European format.
        assert_eq!(plate_country("4GLS168", None), None);
        assert_eq!(plate_country("4GLS168", Some("MD")), None);
        assert_eq!(plate_country("4GLS168", Some("US")), Some("US"));
        // ABC123 is a US shape as well as a Moldovan one.
        assert_eq!(plate_country("ABC123", Some("US")), Some("US"));
        // A US camera considers US formats only, so a Ukrainian or a
        // Moldovan district shape is no plate there.
        assert_eq!(plate_country("AB1234CE", Some("US")), None);
        assert_eq!(plate_country("LGLS168", Some("US")), None);
        assert_eq!(plate_country("LGLS168", Some("MD")), Some("MD"));
        assert!(matching_formats("ABC1234").all(|f| f.country != "US"));
        // Missouri's AB1 C2D and New Jersey's A12 BCD, at a US camera only.
        assert_eq!(plate_country("DH5X9P", Some("US")), Some("US"));
        assert_eq!(plate_country("DH5X9P", Some("UA")), None);
        assert_eq!(plate_country("A12BCD", Some("US")), Some("US"));
        // Illinois, Florida, Massachusetts and Maryland series.
        for plate in ["J868321", "AB12345", "ABCD12", "1ABC23", "1AB2345"] {
            assert_eq!(plate_country(plate, Some("US")), Some("US"), "{plate}");
            assert!(matching_formats(plate).all(|f| f.country != "US"), "{plate}");
        }
    }

    #[test]
    fn stacked_layouts_print_every_character_of_a_known_format_once() {
        for layout in STACKED {
            let format = layout.format().unwrap_or_else(|| panic!("{layout:?}: no such format"));
            assert!(!format.home_only, "{layout:?}");
            let mut positions: Vec<usize> = layout.lines.iter().flat_map(|l| l.iter().copied()).collect();
            positions.sort_unstable();
            assert_eq!(positions, (0..layout.pattern.len()).collect::<Vec<_>>(), "{layout:?}");
            assert!((2..=3).contains(&layout.lines.len()), "{layout:?}");
        }
    }

    #[test]
    fn a_mark_may_split_the_halves_of_us_formats_only() {
        let split: Vec<&PlateFormat> = FORMATS.iter().filter(|f| f.gap.is_some()).collect();
        assert!(split.iter().any(|f| f.pattern == "LLDLDL"));
        assert!(split.iter().all(|f| f.country == "US" && f.home_only && f.gap < Some(f.pattern.len())));
        // California's 1ABC234 runs on.
        assert!(FORMATS.iter().any(|f| f.pattern == "DLLLDDD" && f.gap.is_none()));
    }
}
