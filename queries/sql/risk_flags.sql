-- risk_flags: what deserves a second look, with the evidence.
--
-- One row per flag:
--   rule        which rule raised it (below)
--   plate_norm  the plate (normalised) as read
--   post_id     where
--   flagged_at  the capture time of the read that raised it
--   severity    1 low, 2 medium, 3 high
--   evidence    the read ids the flag rests on, comma-separated (look them
--               up in reads, or in the neighbour's records by read_id)
--   detail      why, in words
--
-- Rules:
--   watchlist_hit         a read of a watchlisted plate while its entry is
--                         valid; exact, or fuzzy (confusion-folded key equal)
--                         with the plate_distance in the detail. Severity:
--                         the watchlist's.
--   plate_cloning         two reads of one plate at two posts, closer in time
--                         than the minimum plausible travel time between them
--                         (post_routes): two vehicles carry the plate. One
--                         flag per later read, with the latest earlier one.
--   no_pre_arrival        an entry read (arrival or departure) with no exit
--                         record from the neighbour in the 12 hours before it,
--                         not even one character off: the vehicle did not
--                         leave through the neighbour's post.
--   pre_arrival_mismatch  the neighbour's record agrees with this post's
--                         departure read, but the arrival read of the same
--                         lane between them differs in two or three
--                         characters: the plate read at arrival is not the
--                         plate announced (misread, or plates swapped).
--   long_dwell            a passage through a post longer than the post's
--                         dwell threshold (posts.dwell_threshold_minutes).
--   frequent_crossings    a plate's seventh (or later) entry within 24 hours.

-- Entry reads that some pre-arrival record matches exactly or one
-- character off.
CREATE VIEW pre_arrival_seen AS
SELECT DISTINCT entry_read_id AS read_id
FROM pre_arrival_candidates
WHERE close = 1;

-- Departure reads with an arrival read of the same post and lane in the 12
-- hours before that is the same plate or one character off.
CREATE VIEW departures_with_arrival AS
SELECT DISTINCT d.read_id
FROM reads d
JOIN read_keys kd ON kd.read_id = d.read_id
JOIN read_keys ka ON ka.plate_hmac = kd.plate_hmac AND ka.variant = kd.variant AND ka.key_version = kd.key_version
JOIN reads a
    ON a.read_id = ka.read_id
   AND a.post_id = d.post_id
   AND a.lane = d.lane
   AND a.direction = d.direction
   AND a.captured_at BETWEEN d.captured_at - INTERVAL '12 hours' AND d.captured_at
WHERE d.point = 'departure' AND a.point = 'arrival' AND kd.variant >= 0;

CREATE VIEW pre_arrival_mismatches AS
WITH unannounced_arrivals AS (
    SELECT *
    FROM reads
    WHERE direction = 'entry' AND point = 'arrival'
      AND read_id NOT IN (SELECT read_id FROM pre_arrival_seen)
),
announced_lone_departures AS (
    -- One row per departure: the latest exit read that announced it
    -- (read ids are ULIDs, which sort by capture time).
    SELECT d.read_id, d.post_id, d.lane, d.direction, d.plate_norm, d.captured_at,
           max(c.exit_read_id) AS exit_read_id, max(c.exit_at) AS exit_at
    FROM reads d
    JOIN pre_arrival_candidates c ON c.entry_read_id = d.read_id
    WHERE d.direction = 'entry' AND d.point = 'departure' AND c.exact = 1
      AND d.read_id NOT IN (SELECT read_id FROM departures_with_arrival)
    GROUP BY d.read_id, d.post_id, d.lane, d.direction, d.plate_norm, d.captured_at
)
SELECT
    d.post_id,
    d.lane,
    a.plate_norm AS arrival_plate,
    d.plate_norm AS departure_plate,
    levenshtein(a.plate_norm, d.plate_norm) AS differing,
    d.exit_read_id,
    d.exit_at,
    a.read_id AS arrival_read_id,
    a.captured_at AS arrived_at,
    d.read_id AS departure_read_id,
    d.captured_at AS departed_at
FROM unannounced_arrivals a
JOIN announced_lone_departures d
    ON d.post_id = a.post_id
   AND d.lane = a.lane
   AND d.direction = a.direction
   AND d.captured_at > a.captured_at
   AND d.captured_at <= a.captured_at + INTERVAL '12 hours'
WHERE d.exit_at <= a.captured_at
  AND levenshtein(a.plate_norm, d.plate_norm) BETWEEN 2 AND 3;

-- Each read of a plate with the latest earlier read of the same plate at
-- another post that it could not have driven from.
CREATE VIEW plate_clones AS
WITH pairs AS (
    SELECT
        a.read_id AS first_read_id,
        a.post_id AS first_post_id,
        a.captured_at AS first_at,
        b.read_id,
        b.plate_norm,
        b.post_id,
        b.captured_at,
        t.min_travel_s,
        (CAST(b.captured_at AS BIGINT) - CAST(a.captured_at AS BIGINT)) / 1000 AS apart_s,
        ROW_NUMBER() OVER (PARTITION BY b.read_id ORDER BY a.captured_at DESC, a.read_id) AS n
    FROM reads a
    JOIN reads b
        ON b.plate_norm = a.plate_norm
       AND b.captured_at > a.captured_at
       AND b.captured_at <= a.captured_at + INTERVAL '6 hours'
    JOIN post_routes t ON t.from_post = a.post_id AND t.to_post = b.post_id
    WHERE CAST(b.captured_at AS BIGINT) - CAST(a.captured_at AS BIGINT) < t.min_travel_s * 1000
)
SELECT first_read_id, first_post_id, first_at, read_id, plate_norm, post_id, captured_at, min_travel_s, apart_s
FROM pairs
WHERE n = 1;

CREATE VIEW risk_flags AS
SELECT
    'watchlist_hit' AS rule,
    r.plate_norm,
    r.post_id,
    r.captured_at AS flagged_at,
    CAST(w.severity AS BIGINT) AS severity,
    r.read_id AS evidence,
    CASE WHEN r.plate_norm = w.plate
        THEN concat('watchlisted: ', w.reason)
        ELSE concat('watchlisted ', w.plate, ' (fuzzy, distance ', CAST(plate_distance(r.plate_norm, w.plate) AS VARCHAR), '): ', w.reason)
    END AS detail
FROM reads r
JOIN watchlist w ON plate_fuzzy(w.plate) = plate_fuzzy(r.plate_norm)
WHERE (w.valid_from IS NULL OR r.captured_at >= w.valid_from)
  AND (w.valid_to IS NULL OR r.captured_at < w.valid_to)

UNION ALL

SELECT
    'plate_cloning',
    plate_norm,
    post_id,
    captured_at,
    CAST(3 AS BIGINT),
    concat(first_read_id, ',', read_id),
    concat('also read at ', first_post_id, ' ', CAST(apart_s AS VARCHAR),
           ' s before; the road takes at least ', CAST(min_travel_s AS VARCHAR), ' s')
FROM plate_clones

UNION ALL

SELECT
    'no_pre_arrival',
    r.plate_norm,
    r.post_id,
    r.captured_at,
    CAST(2 AS BIGINT),
    r.read_id,
    concat('no exit record from ', s.neighbour, ' in the 12 hours before this ', r.point, ' read')
FROM reads r
JOIN posts s ON s.post_id = r.post_id
WHERE r.direction = 'entry'
  AND r.read_id NOT IN (SELECT read_id FROM pre_arrival_seen)
  AND r.read_id NOT IN (SELECT arrival_read_id FROM pre_arrival_mismatches)

UNION ALL

SELECT
    'pre_arrival_mismatch',
    arrival_plate,
    post_id,
    arrived_at,
    CAST(2 AS BIGINT),
    concat(exit_read_id, ',', arrival_read_id, ',', departure_read_id),
    concat('announced and read at departure as ', departure_plate, ', read at arrival as ', arrival_plate,
           ' (', CAST(differing AS VARCHAR), ' characters differ)')
FROM pre_arrival_mismatches

UNION ALL

SELECT
    'long_dwell',
    t.plate_norm,
    t.post_id,
    t.departed_at,
    CAST(1 AS BIGINT),
    concat(t.arrival_read_id, ',', t.departure_read_id),
    concat(CAST(t.dwell_s / 60 AS VARCHAR), ' minutes in the control zone; threshold ', CAST(p.dwell_threshold_minutes AS VARCHAR))
FROM dwell_times t
JOIN posts p ON p.post_id = t.post_id
WHERE t.dwell_s > p.dwell_threshold_minutes * 60

UNION ALL

SELECT
    'frequent_crossings',
    r.plate_norm,
    r.post_id,
    r.captured_at,
    CAST(1 AS BIGINT),
    r.read_id,
    concat(CAST(count(*) AS VARCHAR), ' entries in the 24 hours up to this one')
FROM reads r
JOIN reads e
    ON e.plate_norm = r.plate_norm
   AND e.captured_at > r.captured_at - INTERVAL '24 hours'
   AND e.captured_at <= r.captured_at
WHERE r.direction = 'entry' AND r.point = 'arrival' AND e.direction = 'entry' AND e.point = 'arrival'
GROUP BY r.plate_norm, r.post_id, r.captured_at, r.read_id
HAVING count(*) > 6;
