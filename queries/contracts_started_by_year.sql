-- id = "contracts_started_by_year"
-- theme = "contracts"
-- title_it = "Contratti avviati per anno e tipologia di rapporto"
-- title_en = "Contracts started by year and type of work"
-- description_it = "Contratti iniziati in ciascuno dei dieci anni fino all'anno indicato compreso, per tipologia di rapporto (badante, colf) e in totale, nel comune di lavoro."
-- description_en = "Contracts started in each of the ten years up to and including the year given, by type of work (carer, domestic helper) and in total, at the municipality of work."
-- unit = "contracts"
-- dimensions = ["year", "job_type"]
-- measures = ["contracts"]
-- chart = "line"
-- time_dimension = "year"
-- sources = ["contracts", "territories"]
--
-- [disclosure]
-- count = "contracts"
--
-- [[parameters]]
-- name = "year"
-- type = "int"
-- default = 2024
-- description = "Last year of the series; the series covers the ten years up to it"
-- [[parameters]]
-- name = "district"
-- type = "text"
-- [[parameters]]
-- name = "province"
-- type = "text"

WITH started AS (
    -- Counted by the integer year and type first: the yearly totals are
    -- then added up from these few rows, not counted again from every
    -- contract, and the text the charts want is made from the result.
    -- With no district or province asked, every contract counts and the
    -- territories are not read: the second branch's condition is then
    -- false and the planner drops it, the join with it.
    SELECT c.year, c.job_type, count(*) AS contracts
    FROM contracts c
    WHERE c.year BETWEEN CAST($year AS INT) - 9 AND CAST($year AS INT)
      AND $district IS NULL AND $province IS NULL
    GROUP BY c.year, c.job_type
    UNION ALL
    SELECT c.year, c.job_type, count(*) AS contracts
    FROM contracts c
    JOIN territories t ON t.istat_code = c.istat_code
    WHERE c.year BETWEEN CAST($year AS INT) - 9 AND CAST($year AS INT)
      AND NOT ($district IS NULL AND $province IS NULL)
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
    GROUP BY c.year, c.job_type
),
counted AS (
    SELECT
        year,
        CASE WHEN grouping(job_type) = 1 THEN '_T' ELSE job_type END AS job_type,
        sum(contracts) AS contracts
    FROM started
    GROUP BY GROUPING SETS ((year, job_type), (year))
)
SELECT CAST(year AS VARCHAR) AS year, job_type, contracts
FROM counted
ORDER BY year, job_type = '_T', job_type
