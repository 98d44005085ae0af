-- id = "assistants_per_1000_80plus"
-- theme = "workforce"
-- title_it = "Badanti ogni 1.000 residenti di 80 anni e più, per distretto"
-- title_en = "Carers per 1,000 residents aged 80 and over, by district"
-- description_it = "Lavoratori distinti con almeno un contratto da badante (job_type carer) in corso nell'anno, localizzati nel comune di lavoro prevalente, ogni 1.000 residenti di 80 anni e più dei comuni del distretto (territories.population_80plus, ISTAT; il riferimento temporale è in datasets/README.md), con il totale. Sono esclusi i distretti dove l'osservatorio non registra alcun contratto in corso nell'anno, che resterebbero a zero per mancanza di copertura e non di badanti."
-- description_en = "Distinct workers with at least one carer contract (job_type carer) running in the year, located at their main municipality of work, per 1,000 residents aged 80 and over of the district's municipalities (territories.population_80plus, ISTAT; reference date in datasets/README.md), with the total. Districts where the observatory records no contract running in the year are left out: they would read zero for lack of coverage, not of carers."
-- unit = "workers_per_1000"
-- dimensions = ["district"]
-- measures = ["carers_per_1000", "carers", "population_80plus"]
-- chart = "bar"
-- sources = ["contracts", "workers", "territories"]
--
-- [disclosure]
-- count = "carers"
-- public = ["population_80plus"]
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

WITH active AS (
    -- Workers with a contract running in the year, and whether one is as a carer.
    SELECT c.worker_id, max(CASE WHEN c.job_type = 'carer' THEN 1 ELSE 0 END) AS is_carer
    FROM contracts c
    WHERE c.year <= $year
      AND c.start_date <= make_date(CAST($year AS INT), 12, 31)
      AND (c.end_date IS NULL OR c.end_date >= make_date(CAST($year AS INT), 1, 1))
    GROUP BY c.worker_id
),
carers AS (
    -- Each worker sits in one district (the main municipality of work), so
    -- the districts add up to the total.
    SELECT t.district, sum(a.is_carer) AS carers
    FROM active a
    JOIN workers w ON w.worker_id = a.worker_id
    JOIN territories t ON t.istat_code = w.istat_code
    WHERE ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
    GROUP BY t.district
),
elderly AS (
    SELECT t.district, sum(t.population_80plus) AS population_80plus
    FROM territories t
    WHERE ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
    GROUP BY t.district
),
counted AS (
    -- Only districts the observatory covers in the year (see the description).
    SELECT
        CASE WHEN grouping(e.district) = 1 THEN '_T' ELSE e.district END AS district,
        sum(c.carers) AS carers,
        sum(e.population_80plus) AS population_80plus
    FROM elderly e
    JOIN carers c ON c.district = e.district
    GROUP BY GROUPING SETS ((e.district), ())
    -- No total row when no district is covered.
    HAVING count(*) > 0
)
SELECT
    district,
    round(1000.0 * carers / NULLIF(population_80plus, 0), 2) AS carers_per_1000,
    COALESCE(carers, 0) AS carers,
    population_80plus
FROM counted
ORDER BY district = '_T', district
