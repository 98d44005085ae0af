-- id = "declared_share"
-- theme = "contracts"
-- title_it = "Quota di rapporti dichiarati all'INPS"
-- title_en = "Share of relationships declared to INPS"
-- description_it = "Contratti iniziati nell'anno, per tipologia di rapporto e in totale, nel comune di lavoro: quota di quelli dichiarati all'INPS (declared), con il numero dei dichiarati e dei contratti."
-- description_en = "Contracts started in the year, by type of work and in total, at the municipality of work: share of those declared to INPS (declared), with the number declared and the number of contracts."
-- unit = "share"
-- dimensions = ["job_type"]
-- measures = ["share_declared", "declared", "contracts"]
-- chart = "bar"
-- sources = ["contracts", "territories"]
--
-- [disclosure]
-- count = "contracts"
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

WITH started AS (
    SELECT c.job_type, c.declared
    FROM contracts c
    JOIN territories t ON t.istat_code = c.istat_code
    WHERE c.year = $year
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
counted AS (
    SELECT
        CASE WHEN grouping(job_type) = 1 THEN '_T' ELSE job_type END AS job_type,
        sum(CASE WHEN declared THEN 1 ELSE 0 END) AS declared,
        count(*) AS contracts
    FROM started
    GROUP BY GROUPING SETS ((job_type), ())
)
SELECT
    job_type,
    round(CAST(declared AS DOUBLE) / NULLIF(contracts, 0), 4) AS share_declared,
    declared,
    contracts
FROM counted
ORDER BY job_type = '_T', job_type
