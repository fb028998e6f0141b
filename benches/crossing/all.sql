-- Q1, Q2 and Q3 in one run; Q2 selects from Q1's view.
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

CREATE VIEW hourly AS
SELECT
    crossing,
    CAST(floor(CAST(exit_t AS DOUBLE) / 3600) AS BIGINT) AS hour,
    count(*) AS matches,
    max(entry_t - exit_t) AS max_transit_s
FROM matches
GROUP BY crossing, CAST(floor(CAST(exit_t AS DOUBLE) / 3600) AS BIGINT);

CREATE VIEW frequent AS
SELECT plate, count(*) AS exits
FROM reads
WHERE direction = 'exit'
GROUP BY plate
HAVING count(*) > 3;
