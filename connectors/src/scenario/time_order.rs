//! Putting the output in time order.
//!
//! A day at scale 1 is about 24,000 reads, each a large row. Sorting them
//! with `sort_by` (or Arrow's sort kernel) took a fifth of the generation
//! time in a debug build, where this crate's code is not optimised, so rows
//! are ordered with a bucket sort on their times (one bucket per row on
//! average: the times are spread over the day) and moved exactly once.

use std::cmp::Ordering;

/// Buckets larger than this are sorted with `sort_unstable` instead of by
/// insertion (a guard against skewed times, which the generator never makes).
const INSERTION_LIMIT: usize = 32;

/// Indices of `times` in ascending time order; equal times keep index order.
fn time_order(times: &[i64]) -> Vec<usize> {
    let n = times.len();
    let (Some(&min), Some(&max)) = (times.iter().min(), times.iter().max()) else {
        return Vec::new();
    };
    let span = (i128::from(max) - i128::from(min) + 1) as u128;
    let bucket_of =
        |t: i64| ((((i128::from(t) - i128::from(min)) as u128) * n as u128) / span) as usize;

    let mut starts = vec![0usize; n + 1];
    for &t in times {
        starts[bucket_of(t) + 1] += 1;
    }
    for b in 0..n {
        starts[b + 1] += starts[b];
    }
    let mut order = vec![0usize; n];
    let mut next = starts.clone();
    for (i, &t) in times.iter().enumerate() {
        let b = bucket_of(t);
        order[next[b]] = i;
        next[b] += 1;
    }
    for b in 0..n {
        let bucket = &mut order[starts[b]..starts[b + 1]];
        if bucket.len() > INSERTION_LIMIT {
            bucket.sort_unstable_by_key(|&i| (times[i], i));
            continue;
        }
        for j in 1..bucket.len() {
            let mut k = j;
            while k > 0 && times[bucket[k - 1]] > times[bucket[k]] {
                bucket.swap(k - 1, k);
                k -= 1;
            }
        }
    }
    order
}

/// Sorts `items` by `time`, equal times by `tie`, moving each item once.
pub fn sort_by_time<T>(
    items: &mut Vec<T>,
    time: impl Fn(&T) -> i64,
    tie: impl Fn(&T, &T) -> Ordering,
) {
    let times: Vec<i64> = items.iter().map(time).collect();
    let mut order = time_order(&times);
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && times[order[end]] == times[order[start]] {
            end += 1;
        }
        if end - start > 1 {
            order[start..end].sort_by(|&a, &b| tie(&items[a], &items[b]));
        }
        start = end;
    }
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_time_then_tie() {
        let mut items = vec![
            (5, 'b'),
            (-3, 'z'),
            (5, 'a'),
            (100, 'x'),
            (0, 'q'),
            (5, 'c'),
            (-3, 'y'),
        ];
        sort_by_time(&mut items, |i| i.0, |a, b| a.1.cmp(&b.1));
        assert_eq!(
            items,
            vec![
                (-3, 'y'),
                (-3, 'z'),
                (0, 'q'),
                (5, 'a'),
                (5, 'b'),
                (5, 'c'),
                (100, 'x')
            ]
        );
    }

    #[test]
    fn skewed_and_extreme_times_are_ordered() {
        let mut times: Vec<i64> = (0..500).map(|i| (i * 7919) % 101).collect();
        times.extend([i64::MIN, i64::MAX, 0, 0]);
        let mut items = times.clone();
        sort_by_time(&mut items, |t| *t, |_, _| Ordering::Equal);
        times.sort_unstable();
        assert_eq!(items, times);
        let mut empty: Vec<i64> = Vec::new();
        sort_by_time(&mut empty, |t| *t, |_, _| Ordering::Equal);
        assert!(empty.is_empty());
    }
}
