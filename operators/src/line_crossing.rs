//! Counting lines: did a track's movement between two frames cross the
//! camera's line, and from which side.
//!
//! Points are in fractions of the frame (x right, y down), like the
//! configuration's `counting_line`. A passage is counted when the segment
//! from the previous to the current position properly intersects the line;
//! the side it came from decides the direction (see `from_side` in the config).

use borderflow_types::{CountingLine, Side};

/// The result of one step of a track against a counting line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crossing {
    /// The track did not cross the line in this step.
    None,
    /// It crossed coming from the configured `from_side`: a passage.
    Forward,
    /// It crossed the other way.
    Backward,
}

fn cross(o: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// Which side of the line `p` is on: the sign of the cross product
/// (negative, zero or positive).
fn side_of(line: &CountingLine, p: [f32; 2]) -> f32 {
    cross(line.a, line.b, p)
}

/// The sign [`side_of`] gives for points on `side` of the line, judged by
/// a point far off that side of the frame.
fn sign_of_side(line: &CountingLine, side: Side) -> f32 {
    let mid = [(line.a[0] + line.b[0]) / 2.0, (line.a[1] + line.b[1]) / 2.0];
    let probe = match side {
        Side::Top => [mid[0], mid[1] - 10.0],
        Side::Bottom => [mid[0], mid[1] + 10.0],
        Side::Left => [mid[0] - 10.0, mid[1]],
        Side::Right => [mid[0] + 10.0, mid[1]],
    };
    side_of(line, probe).signum()
}

/// Whether moving from `from` to `to` crosses `line`, and which way.
pub fn crossing(line: &CountingLine, from_side: Side, from: [f32; 2], to: [f32; 2]) -> Crossing {
    let (s_from, s_to) = (side_of(line, from), side_of(line, to));
    // Both ends strictly on opposite sides of the line…
    if s_from == 0.0 || s_from.signum() == s_to.signum() {
        return Crossing::None;
    }
    // …and the line's ends on opposite sides of the movement.
    let (t_a, t_b) = (cross(from, to, line.a), cross(from, to, line.b));
    if t_a.signum() == t_b.signum() && t_a != 0.0 {
        return Crossing::None;
    }
    if s_from.signum() == sign_of_side(line, from_side) { Crossing::Forward } else { Crossing::Backward }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: CountingLine = CountingLine { a: [0.05, 0.6], b: [0.95, 0.6] };

    #[test]
    fn downward_movement_from_the_top_is_a_passage() {
        assert_eq!(crossing(&LINE, Side::Top, [0.5, 0.5], [0.5, 0.7]), Crossing::Forward);
        assert_eq!(crossing(&LINE, Side::Top, [0.5, 0.7], [0.5, 0.5]), Crossing::Backward);
        assert_eq!(crossing(&LINE, Side::Bottom, [0.5, 0.7], [0.5, 0.5]), Crossing::Forward);
    }

    #[test]
    fn movement_that_misses_the_line_is_not_counted() {
        // Stays above the line.
        assert_eq!(crossing(&LINE, Side::Top, [0.5, 0.1], [0.5, 0.55]), Crossing::None);
        // Passes beyond the line's end.
        assert_eq!(crossing(&LINE, Side::Top, [0.98, 0.5], [0.99, 0.7]), Crossing::None);
    }

    #[test]
    fn a_slanted_line_still_knows_its_sides() {
        let slanted = CountingLine { a: [0.0, 0.2], b: [1.0, 0.8] };
        assert_eq!(crossing(&slanted, Side::Top, [0.5, 0.3], [0.5, 0.7]), Crossing::Forward);
        assert_eq!(crossing(&slanted, Side::Right, [0.8, 0.5], [0.2, 0.5]), Crossing::Forward);
    }
}
