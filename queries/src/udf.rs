//! The plate functions, registered in every DataFusion session the engine
//! plans or runs SQL in (standing views, their batch oracle, ad-hoc queries
//! and history) by [`register`], so one dialect holds everywhere:
//!
//! | function | returns |
//! |---|---|
//! | `plate_norm(text)` | the normalised key: upper case, no separators, Cyrillic look-alikes folded to Latin |
//! | `plate_fuzzy(text)` | the confusion-folded key (O/0/D/Q, I/1, B/8, S/5, Z/2) |
//! | `plate_distance(a, b)` | edit distance between the normalised keys; a substitution of two confusable characters costs 0.5, any other edit 1 |
//! | `plate_country(text [, prefer])` | the country whose plate format fits, preferring `prefer` (ISO alpha-2) when several do, and using `prefer`'s home-only formats (US states; with `'US'` only those); NULL if none |
//! | `plate_hmac(text [, key_version])` | HMAC-SHA256 (hex) of `plate_norm(text)` under the exchange key of that version (default: the current one): the key plates cross the border as |
//!
//! Every function returns NULL for a NULL argument. All are immutable, so
//! standing views evaluate them row by row like any other expression.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, StringArray, UInt16Array};
use arrow::datatypes::DataType;
use borderflow_types::plate_grammar::plate_country;
use borderflow_types::{ExchangeKeys, plate_fuzzy, plate_norm};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

/// Registers the plate functions in `ctx`; `plate_hmac` hashes with `keys`.
pub fn register(ctx: &SessionContext, keys: Arc<ExchangeKeys>) {
    for (function, arities) in [
        (Function::Norm, &[1][..]),
        (Function::Fuzzy, &[1]),
        (Function::Distance, &[2]),
        (Function::Country, &[1, 2]),
        (Function::Hmac, &[1, 2]),
    ] {
        let signature = Signature::one_of(arities.iter().map(|&n| TypeSignature::Any(n)).collect(), Volatility::Immutable);
        ctx.register_udf(ScalarUDF::new_from_impl(PlateFunction { function, signature, keys: Arc::clone(&keys) }));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Function {
    Norm,
    Fuzzy,
    Distance,
    Country,
    Hmac,
}

#[derive(Debug)]
struct PlateFunction {
    function: Function,
    signature: Signature,
    keys: Arc<ExchangeKeys>,
}

impl PartialEq for PlateFunction {
    fn eq(&self, other: &Self) -> bool {
        self.function == other.function && self.keys == other.keys
    }
}

impl Eq for PlateFunction {}

impl Hash for PlateFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.function.hash(state);
        self.keys.versions().for_each(|v| v.hash(state));
    }
}

/// Argument `i` as a Utf8 array.
fn text_arg(args: &[ArrayRef], i: usize) -> Result<StringArray> {
    let cast = arrow::compute::cast(&args[i], &DataType::Utf8)?;
    Ok(cast.as_any().downcast_ref::<StringArray>().expect("cast to Utf8").clone())
}

impl ScalarUDFImpl for PlateFunction {
    fn name(&self) -> &str {
        match self.function {
            Function::Norm => "plate_norm",
            Function::Fuzzy => "plate_fuzzy",
            Function::Distance => "plate_distance",
            Function::Country => "plate_country",
            Function::Hmac => "plate_hmac",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.function {
            Function::Distance => DataType::Float64,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let result: ArrayRef = match self.function {
            Function::Norm => map_text(&text_arg(&arrays, 0)?, |t| Some(plate_norm(t))),
            Function::Fuzzy => map_text(&text_arg(&arrays, 0)?, |t| Some(plate_fuzzy(t))),
            Function::Distance => {
                let (a, b) = (text_arg(&arrays, 0)?, text_arg(&arrays, 1)?);
                Arc::new(
                    a.iter()
                        .zip(b.iter())
                        .map(|(a, b)| Some(plate_distance(a?, b?)))
                        .collect::<Float64Array>(),
                )
            }
            Function::Country => {
                let text = text_arg(&arrays, 0)?;
                let prefer = if arrays.len() > 1 { Some(text_arg(&arrays, 1)?) } else { None };
                Arc::new(
                    (0..text.len())
                        .map(|i| {
                            let t = text.is_valid(i).then(|| text.value(i))?;
                            let p = prefer.as_ref().and_then(|p| p.is_valid(i).then(|| p.value(i)));
                            plate_country(&plate_norm(t), p)
                        })
                        .collect::<StringArray>(),
                )
            }
            Function::Hmac => {
                let text = text_arg(&arrays, 0)?;
                let versions = if arrays.len() > 1 {
                    let cast = arrow::compute::cast(&arrays[1], &DataType::UInt16)?;
                    Some(cast.as_any().downcast_ref::<UInt16Array>().expect("cast to UInt16").clone())
                } else {
                    None
                };
                let current = self.keys.current();
                let mut out = Vec::with_capacity(text.len());
                for i in 0..text.len() {
                    let version = match &versions {
                        Some(v) if v.is_null(i) => None,
                        Some(v) => Some(v.value(i)),
                        None => Some(current),
                    };
                    let (Some(version), true) = (version, text.is_valid(i)) else {
                        out.push(None);
                        continue;
                    };
                    match self.keys.hmac(&plate_norm(text.value(i)), version) {
                        Some(hash) => out.push(Some(hash)),
                        None if current == 0 => {
                            return exec_err!("plate_hmac: no exchange keys are configured ([peer] hmac_keys)");
                        }
                        None => return exec_err!("plate_hmac: no exchange key has version {version}"),
                    }
                }
                Arc::new(StringArray::from(out))
            }
        };
        if args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            return datafusion::common::ScalarValue::try_from_array(&result, 0).map(ColumnarValue::Scalar);
        }
        Ok(ColumnarValue::Array(result))
    }
}

fn map_text(text: &StringArray, f: impl Fn(&str) -> Option<String>) -> ArrayRef {
    Arc::new(text.iter().map(|t| t.and_then(&f)).collect::<StringArray>())
}

/// Edit distance between the normalised keys of `a` and `b` in which
/// substituting one confusable character for another (same
/// [`plate_fuzzy`] class) costs 0.5 and every other insertion, deletion or
/// substitution costs 1.
///
/// Written here because edit-distance crates (strsim and the like) have no
/// per-pair substitution costs.
pub fn plate_distance(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (plate_norm(a).chars().collect(), plate_norm(b).chars().collect());
    let fold = |c: char| plate_fuzzy(&c.to_string()).chars().next().unwrap_or(c);
    let mut previous: Vec<f64> = (0..=b.len()).map(|j| j as f64).collect();
    let mut row = vec![0.0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        row[0] = (i + 1) as f64;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = if ca == cb {
                0.0
            } else if fold(ca) == fold(cb) {
                0.5
            } else {
                1.0
            };
            row[j + 1] = (previous[j] + substitution).min(previous[j + 1] + 1.0).min(row[j] + 1.0);
        }
        std::mem::swap(&mut previous, &mut row);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusable_substitutions_cost_half() {
        assert_eq!(plate_distance("ABC 123", "abc123"), 0.0);
        assert_eq!(plate_distance("ABC123", "A8C123"), 0.5);
        assert_eq!(plate_distance("ABC123", "AXC123"), 1.0);
        assert_eq!(plate_distance("ABC123", "ABC1234"), 1.0);
        assert_eq!(plate_distance("OB123", "08I23"), 1.5);
    }
}
