-- Q3 frequent: plates read leaving a post more than three times.
CREATE VIEW frequent AS
SELECT plate, count(*) AS exits
FROM reads
WHERE direction = 'exit'
GROUP BY plate
HAVING count(*) > 3;
