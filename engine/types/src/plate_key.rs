//! Plate keys: the normalised key every join uses, and the confusion-folded key
//! for fuzzy matching. Shared by the operators (voting) and the queries (UDFs).

/// Cyrillic letters that look like Latin ones on plates, folded to Latin.
/// Ukrainian plates use exactly these twelve (А В Е І К М Н О Р С Т Х).
fn fold_cyrillic(c: char) -> char {
    match c {
        'А' | 'а' => 'A',
        'В' | 'в' => 'B',
        'Е' | 'е' => 'E',
        'І' | 'і' | 'Ї' | 'ї' => 'I',
        'К' | 'к' => 'K',
        'М' | 'м' => 'M',
        'Н' | 'н' => 'H',
        'О' | 'о' => 'O',
        'Р' | 'р' => 'P',
        'С' | 'с' => 'C',
        'Т' | 'т' => 'T',
        'Х' | 'х' => 'X',
        'У' | 'у' => 'Y',
        other => other,
    }
}

/// The normalised plate key: upper case, separators removed, Cyrillic
/// look-alikes folded to Latin. `"ав 1234 ве"` and `"AB-1234-BE"` give `AB1234BE`.
pub fn plate_norm(text: &str) -> String {
    text.chars()
        .map(fold_cyrillic)
        .flat_map(char::to_uppercase)
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// The confusion-folded key: [`plate_norm`], then characters that cameras
/// confuse mapped to one representative (O/0/D/Q → 0, I/1 → 1, B/8 → 8,
/// S/5 → 5, Z/2 → 2). Two reads of one plate that differ only by such a
/// confusion have the same fuzzy key.
pub fn plate_fuzzy(text: &str) -> String {
    plate_norm(text)
        .chars()
        .map(|c| match c {
            'O' | 'D' | 'Q' => '0',
            'I' => '1',
            'B' => '8',
            'S' => '5',
            'Z' => '2',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_folds_cyrillic_case_and_separators() {
        assert_eq!(plate_norm("ав 1234 ве"), "AB1234BE");
        assert_eq!(plate_norm("AB-1234-BE"), "AB1234BE");
        assert_eq!(plate_norm(" abc 123 "), "ABC123");
    }

    #[test]
    fn fuzzy_merges_confusable_reads() {
        assert_eq!(plate_fuzzy("OBS 120"), plate_fuzzy("0851Z0"));
        assert_ne!(plate_fuzzy("ABC123"), plate_fuzzy("ABC124"));
    }
}
