-- id = "age_pyramid"
-- theme = "workforce"
-- title_it = "Piramide per età e sesso dei lavoratori assunti nell'anno"
-- title_en = "Age and sex pyramid of the workers hired in the year"
-- description_it = "Lavoratori distinti con almeno un contratto iniziato nell'anno, per classe quinquennale di età (età = anno meno anno di nascita; 18-24, 25-29, ..., 65-69, 70+, e <18 se presenti) e sesso, localizzati nel comune di lavoro prevalente."
-- description_en = "Distinct workers with at least one contract that started in the year, by five-year age class (age = year minus birth year; 18-24, 25-29, ..., 65-69, 70+, and <18 if any) and sex, located at their main municipality of work."
-- unit = "persons"
-- dimensions = ["age_class", "sex"]
-- measures = ["workers"]
-- chart = "pyramid"
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

WITH hired AS (
    -- A worker with several contracts in the year counts once.
    SELECT DISTINCT c.worker_id
    FROM contracts c
    WHERE c.year = $year
),
aged AS (
    SELECT
        w.sex,
        CAST($year AS INT) - w.birth_year AS age
    FROM hired h
    JOIN workers w ON w.worker_id = h.worker_id
    JOIN territories t ON t.istat_code = w.istat_code
    WHERE ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
classed AS (
    SELECT
        sex,
        CASE
            WHEN age < 18 THEN '<18'
            WHEN age < 25 THEN '18-24'
            WHEN age >= 70 THEN '70+'
            ELSE CAST(age - age % 5 AS VARCHAR) || '-' || CAST(age - age % 5 + 4 AS VARCHAR)
        END AS age_class,
        -- Lower bound of the class, to order the pyramid from the youngest.
        CASE
            WHEN age < 18 THEN 0
            WHEN age < 25 THEN 18
            WHEN age >= 70 THEN 70
            ELSE age - age % 5
        END AS lower_bound
    FROM aged
)
SELECT age_class, sex, count(*) AS workers
FROM classed
GROUP BY age_class, sex, lower_bound
ORDER BY lower_bound, sex
