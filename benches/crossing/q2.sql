-- Q2 hourly: the matches of Q1 (inlined) per crossing and hour of exit,
-- with how many and the longest transit. The hour is floor(exit_t / 3600)
-- computed in DOUBLE and cast back: DataFusion's BIGINT / BIGINT divides
-- integers but DuckDB's gives a DOUBLE, so plain exit_t / 3600 differs.
CREATE VIEW hourly AS
SELECT
    m.crossing,
    CAST(floor(CAST(m.exit_t AS DOUBLE) / 3600) AS BIGINT) AS hour,
    count(*) AS matches,
    max(m.entry_t - m.exit_t) AS max_transit_s
FROM (
    SELECT x.crossing, x.t AS exit_t, e.t AS entry_t
    FROM reads x
    JOIN reads e
        ON x.plate = e.plate
       AND x.crossing = e.crossing
       AND x.country <> e.country
       AND e.t >= x.t
       AND e.t <= x.t + 3600
    WHERE x.direction = 'exit'
      AND e.direction = 'entry'
) m
GROUP BY m.crossing, CAST(floor(CAST(m.exit_t AS DOUBLE) / 3600) AS BIGINT);
