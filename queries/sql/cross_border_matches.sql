-- cross_border_matches: which vehicle that left the neighbour's post arrived here.
--
-- A vehicle crossing the border is read leaving the neighbour's post (exit
-- reads, which reach this post as pre-arrival records: hashed plates, never
-- text) and read arriving here (an entry read at the arrival point). This
-- view joins the two, by the hashed plate key, within 12 hours, and keeps at
-- most one match per passage: for each arrival the best exit read (an exact
-- key before a fuzzy one, the departure camera before the arrival camera,
-- then the latest), and for each exit read the earliest arrival that chose it.
--
-- A fuzzy match is one where the whole plate keys differ but one of their
-- one-character-masked keys or their confusion-folded keys agree (one
-- character misread on either side, or O/0, I/1, B/8, S/5, Z/2 confusions).
--
-- Columns:
--   crossing          the crossing, e.g. otaci-mohyliv-podilskyi
--   exit_post_id      the neighbour's post the vehicle left
--   entry_post_id     this side's post it arrived at
--   plate_norm        the plate as read here (normalised)
--   exit_read_id      the neighbour's read (its read_id, as sent)
--   exit_point        where the neighbour's camera stands: departure (at the
--                     bridge) or arrival (when its departure read is missing)
--   exit_at           when the neighbour read it
--   entry_read_id     this post's arrival read
--   entry_at          when it was read here
--   transit_s         seconds from exit_at to entry_at (bridge transit when
--                     exit_point is departure)
--   match             'exact' or 'fuzzy'
--   matched_keys      how many of the plate's hashed keys agreed (more is surer;
--                     during a key rotation a key that agrees under both
--                     versions counts once)

-- Every entry read (arrival or departure point) with every pre-arrival exit
-- read from the neighbour that shares a key with it within 12 hours (under
-- the same key version: each side hashes under every version it holds).
CREATE VIEW pre_arrival_candidates AS
SELECT
    r.read_id AS entry_read_id,
    r.post_id AS entry_post_id,
    r.point AS entry_point,
    r.lane AS entry_lane,
    r.plate_norm,
    r.captured_at AS entry_at,
    s.crossing,
    p.read_id AS exit_read_id,
    p.post_id AS exit_post_id,
    p.point AS exit_point,
    p.captured_at AS exit_at,
    max(CASE WHEN k.variant = 0 THEN 1 ELSE 0 END) AS exact,
    max(CASE WHEN k.variant >= 0 THEN 1 ELSE 0 END) AS close,
    count(DISTINCT k.variant) AS matched_keys
FROM reads r
JOIN posts s ON s.post_id = r.post_id
JOIN read_keys k ON k.read_id = r.read_id
JOIN pre_arrival p
    ON p.plate_hmac = k.plate_hmac
   AND p.variant = k.variant
   AND p.key_version = k.key_version
   AND p.post_id = s.neighbour
   AND p.captured_at BETWEEN r.captured_at - INTERVAL '12 hours' AND r.captured_at
WHERE r.direction = 'entry' AND p.direction = 'exit'
GROUP BY r.read_id, r.post_id, r.point, r.lane, r.plate_norm, r.captured_at, s.crossing,
         p.read_id, p.post_id, p.point, p.captured_at;

CREATE VIEW cross_border_matches AS
WITH best_exit AS (
    SELECT *, ROW_NUMBER() OVER (
        PARTITION BY entry_read_id
        ORDER BY exact DESC, exit_point DESC, exit_at DESC, exit_read_id
    ) AS rank_for_entry
    FROM pre_arrival_candidates
    WHERE entry_point = 'arrival'
),
best_entry AS (
    SELECT *, ROW_NUMBER() OVER (
        PARTITION BY exit_read_id
        ORDER BY exact DESC, entry_at, entry_read_id
    ) AS rank_for_exit
    FROM best_exit
    WHERE rank_for_entry = 1
)
SELECT
    crossing,
    exit_post_id,
    entry_post_id,
    plate_norm,
    exit_read_id,
    exit_point,
    exit_at,
    entry_read_id,
    entry_at,
    (CAST(entry_at AS BIGINT) - CAST(exit_at AS BIGINT)) / 1000 AS transit_s,
    CASE WHEN exact = 1 THEN 'exact' ELSE 'fuzzy' END AS match,
    matched_keys
FROM best_entry
WHERE rank_for_exit = 1;
