-- id = "top_citizenships"
-- theme = "workforce"
-- title_it = "Lavoratori per cittadinanza: le dieci più frequenti"
-- title_en = "Workers by citizenship: the ten largest"
-- description_it = "Lavoratori distinti con almeno un contratto in corso nell'anno (iniziato entro il 31 dicembre e non cessato prima del 1° gennaio), per cittadinanza (codice ISO 3166-1 alfa-2; IT comprende i naturalizzati), localizzati nel comune di lavoro prevalente: le dieci cittadinanze più numerose, le altre riunite in OTHER, e il totale. Ordinate per numerosità."
-- description_en = "Distinct workers with at least one contract running in the year (started by 31 December and not ended before 1 January), by citizenship (ISO 3166-1 alpha-2 code; IT includes naturalised workers), located at their main municipality of work: the ten largest citizenships, the others grouped as OTHER, and the total. Ordered by size."
-- unit = "persons"
-- dimensions = ["citizenship"]
-- measures = ["workers"]
-- chart = "bar"
-- sources = ["contracts", "workers", "territories"]
--
-- [disclosure]
-- count = "workers"
--
-- [[parameters]]
-- name = "year"
-- type = "int"
-- default = 2024
-- [[parameters]]
-- name = "district"
-- type = "text"
-- [[parameters]]
-- name = "province"
-- type = "text"

WITH by_citizenship AS (
    -- A worker counts once: `IN` keeps each worker however many of their
    -- contracts run, with no DISTINCT over the contracts.
    SELECT w.citizenship, count(*) AS workers
    FROM workers w
    JOIN territories t ON t.istat_code = w.istat_code
    WHERE ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
      AND w.worker_id IN (
          -- Contracts running at some point of the year.
          SELECT c.worker_id
          FROM contracts c
          WHERE c.year <= $year
            AND c.start_date <= make_date(CAST($year AS INT), 12, 31)
            AND (c.end_date IS NULL OR c.end_date >= make_date(CAST($year AS INT), 1, 1))
      )
    GROUP BY w.citizenship
),
ranked AS (
    -- Ties are broken by code, so the ten are always the same ten.
    SELECT
        CASE
            WHEN row_number() OVER (ORDER BY workers DESC, citizenship) <= 10 THEN citizenship
            ELSE 'OTHER'
        END AS bucket,
        workers,
        row_number() OVER (ORDER BY workers DESC, citizenship) AS position
    FROM by_citizenship
),
grouped AS (
    -- The total comes from the same pass (the empty grouping set), so the
    -- active workers are computed once; it is there even with no workers.
    SELECT
        CASE WHEN grouping(bucket) = 1 THEN '_T' ELSE bucket END AS citizenship,
        COALESCE(sum(workers), 0) AS workers,
        CASE WHEN grouping(bucket) = 1 THEN 1000000 ELSE min(position) END AS position
    FROM ranked
    GROUP BY GROUPING SETS ((bucket), ())
)
SELECT citizenship, workers
FROM grouped
ORDER BY position
