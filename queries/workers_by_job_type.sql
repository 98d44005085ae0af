-- id = "workers_by_job_type"
-- theme = "workforce"
-- title_it = "Lavoratori domestici per tipologia di rapporto e sesso"
-- title_en = "Domestic workers by type of work and sex"
-- description_it = "Lavoratori distinti con almeno un contratto in corso nell'anno (iniziato entro il 31 dicembre e non cessato prima del 1° gennaio), per tipologia prevalente del lavoratore (badante o colf, come nella classificazione INPS di workers.job_type) e sesso, localizzati nel comune di lavoro prevalente, con i totali. Ogni lavoratore conta una volta, sotto la sua tipologia prevalente."
-- description_en = "Distinct workers with at least one contract running in the year (started by 31 December and not ended before 1 January), by the worker's prevailing type of work (carer or domestic helper, as in INPS's classification in workers.job_type) and sex, located at their main municipality of work, with totals. Each worker counts once, under their prevailing type."
-- unit = "persons"
-- dimensions = ["job_type", "sex"]
-- measures = ["workers"]
-- chart = "grouped_bar"
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

WITH workforce AS (
    -- The worker's own job type, not each contract's: a worker with both
    -- kinds of contract would otherwise count twice and the totals not add
    -- up. `IN` keeps each worker however many of their contracts run, with
    -- no DISTINCT over the contracts.
    SELECT w.job_type, w.sex, count(*) AS workers
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
    GROUP BY w.job_type, w.sex
),
counted AS (
    -- The totals are added up from the few rows of `workforce`, not
    -- counted again from every worker.
    SELECT
        CASE WHEN grouping(job_type) = 1 THEN '_T' ELSE job_type END AS job_type,
        CASE WHEN grouping(sex) = 1 THEN '_T' ELSE sex END AS sex,
        COALESCE(sum(workers), 0) AS workers
    FROM workforce
    GROUP BY CUBE (job_type, sex)
)
SELECT job_type, sex, workers
FROM counted
ORDER BY job_type = '_T', job_type, sex
