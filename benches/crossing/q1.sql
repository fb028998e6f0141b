-- Q1 matches: an exit read and the entry read of the same plate at the
-- other country's post of the same crossing, at most an hour later.
CREATE VIEW matches AS
SELECT
    x.plate,
    x.crossing,
    x.read_id AS exit_id,
    e.read_id AS entry_id,
    x.t AS exit_t,
    e.t AS entry_t
FROM reads x
JOIN reads e
    ON x.plate = e.plate
   AND x.crossing = e.crossing
   AND x.country <> e.country
   AND e.t >= x.t
   AND e.t <= x.t + 3600
WHERE x.direction = 'exit'
  AND e.direction = 'entry';
