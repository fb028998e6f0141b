//! Query results as sqllogictest values, and the differences between two
//! multisets of rows.

use std::collections::BTreeMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// Rows as the lines a file holds: sorted, one value a line if `value_wise`.
pub(super) fn expected_lines(rows: Vec<Vec<String>>, value_wise: bool) -> Vec<String> {
    let mut lines: Vec<String> = if value_wise {
        rows.into_iter().flatten().collect()
    } else {
        rows.into_iter().map(|row| row.join(" ")).collect()
    };
    lines.sort();
    lines
}

/// Lines of `expected` missing from `actual` (`- `) and extra in it (`+ `),
/// as multisets.
pub(super) fn diff(expected: &[String], actual: &[String]) -> String {
    let mut counts: BTreeMap<&str, isize> = BTreeMap::new();
    for line in expected {
        *counts.entry(line).or_default() -= 1;
    }
    for line in actual {
        *counts.entry(line).or_default() += 1;
    }
    let mut out = Vec::new();
    for (line, count) in counts {
        let sign = if count < 0 { '-' } else { '+' };
        for _ in 0..count.unsigned_abs() {
            out.push(format!("{sign} {line}"));
        }
    }
    if out.is_empty() {
        return "(the same rows)".into();
    }
    const SHOWN: usize = 20;
    if out.len() > SHOWN {
        let more = out.len() - SHOWN;
        out.truncate(SHOWN);
        out.push(format!("… and {more} more"));
    }
    out.join("\n")
}

/// A batch's rows as sqllogictest values.
pub(super) fn format_rows(batch: &RecordBatch) -> Result<Vec<Vec<String>>, String> {
    let columns: Vec<Vec<String>> = batch.columns().iter().map(format_column).collect::<Result<_, _>>()?;
    Ok((0..batch.num_rows()).map(|i| columns.iter().map(|c| c[i].clone()).collect()).collect())
}

pub(super) fn format_column(array: &ArrayRef) -> Result<Vec<String>, String> {
    let options = FormatOptions::default().with_null("NULL");
    let formatter = ArrayFormatter::try_new(array.as_ref(), &options).map_err(|e| e.to_string())?;
    let is_string = matches!(array.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    Ok((0..array.len())
        .map(|i| {
            if array.is_null(i) {
                return "NULL".to_string();
            }
            match array.data_type() {
                DataType::Float64 => format_float(array.as_primitive::<Float64Type>().value(i)),
                DataType::Float32 => format_float(f64::from(array.as_primitive::<Float32Type>().value(i))),
                _ => {
                    let value = formatter.value(i).to_string();
                    if is_string && value.is_empty() { "(empty)".to_string() } else { value }
                }
            }
        })
        .collect())
}

/// Floating point rounded to 12 decimals, without trailing zeros: stable
/// whatever order a sum or average added its terms in.
pub(super) fn format_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let fixed = format!("{value:.12}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" { "0".into() } else { trimmed.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_short_and_stable() {
        assert_eq!(format_float(2.0), "2");
        assert_eq!(format_float(0.1 + 0.2), "0.3");
        assert_eq!(format_float(-1.0 / 3.0), "-0.333333333333");
        assert_eq!(format_float(-0.0), "0");
        assert_eq!(format_float(f64::NAN), "NaN");
    }

    #[test]
    fn diff_shows_missing_and_extra_rows() {
        let expected = vec!["a 1".to_string(), "b 2".to_string(), "b 2".to_string()];
        let actual = vec!["b 2".to_string(), "c 3".to_string()];
        assert_eq!(diff(&expected, &actual), "- a 1\n- b 2\n+ c 3");
    }
}
