-- dwell_times: how long vehicles spend in each post's control zone, and on
-- the bridge between the two posts of a crossing.
--
-- A passage through a post is its arrival read and its departure read: same
-- post, direction and lane, the same plate (or the same confusion-folded
-- plate), the departure within 12 hours after the arrival. Each arrival is
-- paired with its first departure, and each departure with its latest
-- arrival, so a passage is counted once.
--
-- dwell_times, one row per passage through a post:
--   post_id, country, crossing   the post
--   direction         entry or exit (of the post's country)
--   lane              the lane
--   plate_norm        the plate as read at arrival (normalised)
--   arrival_read_id, arrived_at       the arrival read and its time
--   departure_read_id, departed_at    the departure read and its time
--   dwell_s           seconds in the control zone
--
-- bridge_transits, one row per cross-border match whose exit read is the
-- neighbour's departure camera (see cross_border_matches):
--   crossing, exit_post_id, entry_post_id, exit_read_id, exit_at,
--   entry_read_id, entry_at, transit_s (seconds on the bridge)
--
-- dwell_percentiles, per post, direction and hour of arrival (UTC):
--   passages          passages that arrived in that hour
--   p50_s, p90_s, p99_s   dwell percentiles, seconds (interpolated)
--
-- transit_percentiles, per receiving post and hour of arrival (UTC):
--   transits, p50_s, p90_s, p99_s   bridge transit percentiles, seconds

CREATE VIEW dwell_times AS
WITH pairs AS (
    SELECT
        a.post_id, a.direction, a.lane, a.plate_norm,
        a.read_id AS arrival_read_id, a.captured_at AS arrived_at,
        d.read_id AS departure_read_id, d.captured_at AS departed_at
    FROM reads a
    JOIN reads d
        ON d.post_id = a.post_id
       AND d.direction = a.direction
       AND d.lane = a.lane
       AND plate_fuzzy(d.plate_norm) = plate_fuzzy(a.plate_norm)
       AND d.captured_at > a.captured_at
       AND d.captured_at <= a.captured_at + INTERVAL '12 hours'
    WHERE a.point = 'arrival' AND d.point = 'departure'
),
first_departure AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY arrival_read_id ORDER BY departed_at, departure_read_id) AS n
    FROM pairs
),
last_arrival AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY departure_read_id ORDER BY arrived_at DESC, arrival_read_id) AS m
    FROM first_departure
    WHERE n = 1
)
SELECT
    l.post_id, p.country, p.crossing, l.direction, l.lane, l.plate_norm,
    l.arrival_read_id, l.arrived_at, l.departure_read_id, l.departed_at,
    (CAST(l.departed_at AS BIGINT) - CAST(l.arrived_at AS BIGINT)) / 1000 AS dwell_s
FROM last_arrival l
JOIN posts p ON p.post_id = l.post_id
WHERE l.m = 1;

CREATE VIEW bridge_transits AS
SELECT crossing, exit_post_id, entry_post_id, exit_read_id, exit_at, entry_read_id, entry_at, transit_s
FROM cross_border_matches
WHERE exit_point = 'departure';

CREATE VIEW dwell_percentiles AS
SELECT
    post_id,
    direction,
    date_trunc('hour', arrived_at) AS hour,
    count(*) AS passages,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY dwell_s) AS p50_s,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY dwell_s) AS p90_s,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY dwell_s) AS p99_s
FROM dwell_times
GROUP BY post_id, direction, date_trunc('hour', arrived_at);

CREATE VIEW transit_percentiles AS
SELECT
    entry_post_id,
    date_trunc('hour', entry_at) AS hour,
    count(*) AS transits,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY transit_s) AS p50_s,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY transit_s) AS p90_s,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY transit_s) AS p99_s
FROM bridge_transits
GROUP BY entry_post_id, date_trunc('hour', entry_at);
