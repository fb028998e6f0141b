//! Registration plates: realistic plates by country, printed as on the plate,
//! and the registry that keeps every vehicle's plate unique.
//!
//! Every format here is one of `borderflow_types::plate_grammar::FORMATS`,
//! so a true plate always fits a format of its own country.

use std::collections::HashSet;

use borderflow_types::plate_grammar::plate_country;
use borderflow_types::plate_norm;
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

/// A vehicle's real plate.
#[derive(Clone, Debug, PartialEq)]
pub struct TruePlate {
    /// As printed, with the spaces of the plate (`"ABC 123"`, `"BH 1234 AB"`).
    pub text: String,
    /// [`plate_norm`] of `text`.
    pub norm: String,
    /// Country of registration (ISO 3166 alpha-2).
    pub country: &'static str,
    /// `plate_country(norm, Some(camera country))` for cameras in MD and UA,
    /// worked out once: every correct read of the plate needs it.
    read_as: [(&'static str, Option<&'static str>); 2],
}

impl TruePlate {
    fn new(text: String, norm: String, country: &'static str) -> Self {
        let read_as = ["MD", "UA"].map(|camera| (camera, plate_country(&norm, Some(camera))));
        TruePlate {
            text,
            norm,
            country,
            read_as,
        }
    }

    /// The country a camera in `camera_country` reports for a correct read
    /// (`plate_grammar::plate_country` preferring the camera's country).
    pub fn read_country(&self, camera_country: &str) -> Option<&'static str> {
        match self
            .read_as
            .iter()
            .find(|(camera, _)| *camera == camera_country)
        {
            Some((_, country)) => *country,
            None => plate_country(&self.norm, Some(camera_country)),
        }
    }
}

/// Share of vehicles by country of registration (sums to 1).
pub const REGISTRATION_MIX: &[(&str, f64)] = &[
    ("MD", 0.45),
    ("UA", 0.40),
    ("RO", 0.07),
    ("PL", 0.03),
    ("BG", 0.02),
    ("DE", 0.02),
    ("LT", 0.01),
];

/// Letters on Moldovan and most EU plates (Q and W are not issued in MD or RO).
const LATIN_ISSUED: &[u8] = b"ABCDEFGHIJKLMNOPRSTUVXYZ";
const LATIN_ALL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Letters of Ukrainian plates as their Latin look-alikes (plate_grammar::UA_LETTERS).
const UA_LETTERS: &[u8] = b"ABCEHIKMOPTX";
/// Letters of Bulgarian plates (Cyrillic look-alikes).
const BG_LETTERS: &[u8] = b"ABEKMHOPCTYX";

/// Moldovan district codes of the 1992–2015 format.
const MD_DISTRICTS: &[&str] = &[
    "BL", "BR", "ED", "OC", "SO", "DR", "FL", "GL", "RS", "CH", "CM", "CS", "CT", "GG", "ST", "TR",
    "UN", "OR", "HN", "CL",
];

/// Ukrainian region prefixes with a base weight (all letters in UA_LETTERS).
#[rustfmt::skip]
const UA_REGIONS: &[(&str, u32)] = &[
    ("AA", 6), ("KA", 4), ("AI", 4), ("KI", 2), // Kyiv city and oblast
    ("BH", 6), ("HH", 4),                       // Odesa
    ("AB", 4), ("KB", 2),                       // Vinnytsia
    ("CE", 4), ("IE", 2),                       // Chernivtsi
    ("BX", 3), ("HX", 1),                       // Khmelnytskyi
    ("BC", 3), ("HC", 1),                       // Lviv
    ("BE", 2), ("HE", 1),                       // Mykolaiv
    ("AX", 2), ("KX", 1),                       // Kharkiv
    ("AE", 2), ("KE", 1),                       // Dnipro
    ("BO", 1), ("AT", 1), ("AM", 1), ("AO", 1), ("AP", 1), ("BI", 1), ("BK", 1),
    ("BM", 1), ("BT", 1), ("CA", 1), ("CB", 1), ("BA", 1), ("AC", 1), ("AH", 1),
];

/// Prefixes most common at a crossing (the oblast next to it), weighted up.
fn ua_regions_near(crossing: &str) -> &'static [&'static str] {
    match crossing {
        "criva-mamalyha" => &["CE", "IE"],
        "otaci-mohyliv-podilskyi" => &["AB", "KB"],
        "tudora-starokazachie" | "vulcanesti-vinogradovca" | "palanca-maiaki-udobnoe" => {
            &["BH", "HH"]
        }
        _ => &[],
    }
}

const RO_COUNTIES: &[&str] = &[
    "IS", "SV", "BT", "GL", "VS", "BC", "NT", "CJ", "TM", "CT", "TL", "BR", "VN", "BV", "PH",
];
const PL_PREFIXES: &[&str] = &[
    "WA", "WW", "WX", "KR", "LU", "LL", "RZ", "PO", "GD", "DW", "EL", "SZ",
];
const BG_PREFIXES: &[&str] = &[
    "CA", "CB", "CO", "PB", "PA", "PK", "PP", "BT", "BH", "CT", "TX", "EH", "OB", "KH", "CH", "EB",
];
const DE_ONE_LETTER: &[&str] = &["B", "M", "K", "F", "S", "H", "L", "D"];
const DE_TWO_LETTERS: &[&str] = &["HH", "HB", "DO", "KA", "MZ", "WI", "DD", "BN"];

fn letters(rng: &mut ChaCha8Rng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

fn digits(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// A number of `n` digits that is not all zeros.
fn serial(rng: &mut ChaCha8Rng, n: u32) -> String {
    let max = 10u32.pow(n);
    format!("{:0width$}", rng.random_range(1..max), width = n as usize)
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &'a [&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or("")
}

/// A country of registration drawn from [`REGISTRATION_MIX`].
pub fn registration_country(rng: &mut ChaCha8Rng) -> &'static str {
    let mut u: f64 = rng.random();
    for (country, share) in REGISTRATION_MIX {
        if u < *share {
            return country;
        }
        u -= share;
    }
    "MD"
}

/// The printed text of a random plate of `country`, as vehicles seen near
/// `crossing` carry them.
fn plate_text(rng: &mut ChaCha8Rng, country: &str, crossing: &str) -> String {
    match country {
        "MD" => {
            let u: f64 = rng.random();
            if u < 0.84 {
                format!("{} {}", letters(rng, LATIN_ISSUED, 3), serial(rng, 3))
            } else if u < 0.96 {
                let district = pick(rng, MD_DISTRICTS);
                format!(
                    "{district} {} {}",
                    letters(rng, LATIN_ISSUED, 2),
                    serial(rng, 3)
                )
            } else if u < 0.98 {
                format!("C {} {}", digits(rng, 3), serial(rng, 3))
            } else {
                format!("H {}", serial(rng, 4))
            }
        }
        "UA" => {
            let u: f64 = rng.random();
            if u < 0.985 {
                let near = ua_regions_near(crossing);
                let region = if !near.is_empty() && rng.random_bool(0.45) {
                    pick(rng, near)
                } else {
                    let total: u32 = UA_REGIONS.iter().map(|(_, w)| w).sum();
                    let mut k = rng.random_range(0..total);
                    let mut chosen = UA_REGIONS[0].0;
                    for (code, weight) in UA_REGIONS {
                        if k < *weight {
                            chosen = *code;
                            break;
                        }
                        k -= weight;
                    }
                    chosen
                };
                format!(
                    "{region} {} {}",
                    serial(rng, 4),
                    letters(rng, UA_LETTERS, 2)
                )
            } else if u < 0.995 {
                format!(
                    "{} {} {}",
                    digits(rng, 2),
                    letters(rng, UA_LETTERS, 2),
                    serial(rng, 4)
                )
            } else {
                format!("{} C {}", digits(rng, 3), serial(rng, 4))
            }
        }
        "RO" => {
            if rng.random_bool(0.15) {
                format!("B {} {}", serial(rng, 3), letters(rng, LATIN_ISSUED, 3))
            } else {
                let county = pick(rng, RO_COUNTIES);
                format!(
                    "{county} {} {}",
                    serial(rng, 2),
                    letters(rng, LATIN_ISSUED, 3)
                )
            }
        }
        "PL" => format!("{} {}", pick(rng, PL_PREFIXES), serial(rng, 5)),
        "BG" => format!(
            "{} {} {}",
            pick(rng, BG_PREFIXES),
            serial(rng, 4),
            letters(rng, BG_LETTERS, 2)
        ),
        "DE" => {
            let number = rng.random_range(1000..10000);
            if rng.random_bool(0.7) {
                format!(
                    "{} {} {number}",
                    pick(rng, DE_ONE_LETTER),
                    letters(rng, LATIN_ALL, 2)
                )
            } else {
                format!(
                    "{} {} {number}",
                    pick(rng, DE_TWO_LETTERS),
                    letters(rng, LATIN_ALL, 1)
                )
            }
        }
        "LT" => format!("{} {}", letters(rng, LATIN_ALL, 3), serial(rng, 3)),
        _ => format!("{} {}", letters(rng, LATIN_ISSUED, 3), serial(rng, 3)),
    }
}

/// Hands out plates, each normalised key at most once per scenario.
#[derive(Default)]
pub struct PlateRegistry {
    used: HashSet<String>,
}

impl PlateRegistry {
    /// A plate of `country` that no other vehicle (and no watchlist decoy) has.
    pub fn fresh(
        &mut self,
        rng: &mut ChaCha8Rng,
        country: &'static str,
        crossing: &str,
    ) -> TruePlate {
        loop {
            let text = plate_text(rng, country, crossing);
            let norm = plate_norm(&text);
            if self.used.insert(norm.clone()) {
                return TruePlate::new(text, norm, country);
            }
        }
    }
}
