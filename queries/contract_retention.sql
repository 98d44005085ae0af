-- id = "contract_retention"
-- theme = "contracts"
-- title_it = "Durata dei rapporti: contratti ancora in corso a 6 e 12 mesi"
-- title_en = "Contract retention: contracts still running at 6 and 12 months"
-- description_it = "Contratti iniziati nell'anno, per tipologia di rapporto, con il totale: quota ancora in corso 183 giorni (6 mesi) e 365 giorni (12 mesi) dopo l'inizio, cioè senza data di cessazione o cessati non prima di quel giorno. I contratti troppo recenti per essere osservati fino a quella soglia (inizio più soglia oltre l'ultima data registrata in contracts) sono esclusi dal denominatore della soglia; observed_6m e observed_12m ne danno il numero, e la quota è vuota se nessuno è osservabile."
-- description_en = "Contracts started in the year, by type of work, with the total: share still running 183 days (6 months) and 365 days (12 months) after the start, i.e. with no end date or ended on that day or later. Contracts too recent to be followed that far (start plus horizon after the last date recorded in contracts) are left out of that horizon's denominator; observed_6m and observed_12m give their number, and the share is empty when none is observable."
-- unit = "share"
-- dimensions = ["job_type"]
-- measures = ["share_running_6m", "share_running_12m", "contracts", "observed_6m", "observed_12m"]
-- chart = "grouped_bar"
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

WITH cutoff AS (
    -- The last day the contracts table observes: later ends are unknown yet.
    SELECT greatest(max(start_date), max(end_date)) AS last_day
    FROM contracts
),
followed AS (
    SELECT
        c.job_type,
        c.start_date + INTERVAL '183 days' <= cu.last_day AS observable_6m,
        c.start_date + INTERVAL '365 days' <= cu.last_day AS observable_12m,
        c.end_date IS NULL OR c.end_date >= c.start_date + INTERVAL '183 days' AS running_6m,
        c.end_date IS NULL OR c.end_date >= c.start_date + INTERVAL '365 days' AS running_12m
    FROM contracts c
    JOIN territories t ON t.istat_code = c.istat_code
    CROSS JOIN cutoff cu
    WHERE c.year = $year
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
counted AS (
    SELECT
        CASE WHEN grouping(job_type) = 1 THEN '_T' ELSE job_type END AS job_type,
        count(*) AS contracts,
        sum(CASE WHEN observable_6m THEN 1 ELSE 0 END) AS observed_6m,
        sum(CASE WHEN observable_6m AND running_6m THEN 1 ELSE 0 END) AS running_6m,
        sum(CASE WHEN observable_12m THEN 1 ELSE 0 END) AS observed_12m,
        sum(CASE WHEN observable_12m AND running_12m THEN 1 ELSE 0 END) AS running_12m
    FROM followed
    GROUP BY GROUPING SETS ((job_type), ())
)
SELECT
    job_type,
    round(CAST(running_6m AS DOUBLE) / NULLIF(observed_6m, 0), 4) AS share_running_6m,
    round(CAST(running_12m AS DOUBLE) / NULLIF(observed_12m, 0), 4) AS share_running_12m,
    contracts,
    observed_6m,
    observed_12m
FROM counted
ORDER BY job_type = '_T', job_type
