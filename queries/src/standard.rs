//! The standard queries: the views the customs services asked for, shipped
//! as SQL files in `queries/sql/` (each opens with a comment for analysts:
//! what it answers and what every column means).
//!
//! | file | views |
//! |---|---|
//! | `cross_border_matches.sql` | `pre_arrival_candidates`, `cross_border_matches` |
//! | `dwell_times.sql` | `dwell_times`, `bridge_transits`, `dwell_percentiles`, `transit_percentiles` |
//! | `risk_flags.sql` | `pre_arrival_seen`, `departures_with_arrival`, `pre_arrival_mismatches`, `plate_clones`, `risk_flags` |
//!
//! They read the engine's tables: `reads`, `read_keys` (this post's reads
//! hashed as the neighbour hashes pre-arrival records), `pre_arrival`,
//! `posts`, `post_routes` and `watchlist`. Files are created in the order
//! above, because later views select from earlier ones.

use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast;

use crate::{StandingViews, ViewError};

/// The standard query files, `(file stem, SQL text)`, in creation order.
pub const FILES: &[(&str, &str)] = &[
    ("cross_border_matches", include_str!("../sql/cross_border_matches.sql")),
    ("dwell_times", include_str!("../sql/dwell_times.sql")),
    ("risk_flags", include_str!("../sql/risk_flags.sql")),
];

/// The views an analyst reads (the others are steps towards them).
pub const MAIN_VIEWS: &[&str] = &["cross_border_matches", "dwell_times", "dwell_percentiles", "transit_percentiles", "risk_flags"];

/// The `CREATE VIEW` statements of a file, as `(view name, statement)`.
pub fn view_statements(file: &str, text: &str) -> Result<Vec<(String, String)>, ViewError> {
    let error = |message: String| ViewError::Sql { view: file.to_string(), message };
    let statements = DFParser::parse_sql(text).map_err(|e| error(e.to_string()))?;
    statements
        .into_iter()
        .map(|statement| match &statement {
            Statement::Statement(inner) => match inner.as_ref() {
                ast::Statement::CreateView(view) => Ok((view.name.to_string(), inner.to_string())),
                other => Err(error(format!("only CREATE VIEW statements belong here, not `{other}`"))),
            },
            other => Err(error(format!("only CREATE VIEW statements belong here, not `{other}`"))),
        })
        .collect()
}

/// Creates every standard view in `views` (whose tables must be
/// registered); returns their names in creation order.
pub async fn create_standard_views(views: &mut StandingViews) -> Result<Vec<String>, ViewError> {
    let mut created = Vec::new();
    for (file, text) in FILES {
        for (name, sql) in view_statements(file, text)? {
            views.create_view(&name, &sql).await?;
            created.push(name);
        }
    }
    Ok(created)
}
