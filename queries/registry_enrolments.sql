-- id = "registry_enrolments"
-- theme = "workforce"
-- title_it = "Iscrizioni al registro pubblico degli assistenti familiari per cittadinanza e livello di italiano"
-- title_en = "Enrolments in the public registry of family assistants by citizenship and Italian level"
-- description_it = "Assistenti familiari iscritti al registro pubblico (workers con in_registry) la cui prima registrazione cade nell'anno, per gruppo di cittadinanza (IT, EU, NON_EU) e livello di italiano QCER (_Z = non valutato), nel comune di lavoro prevalente, con i totali."
-- description_en = "Family assistants enrolled in the public registry (workers with in_registry) whose first registration falls in the year, by citizenship group (IT, EU, NON_EU) and CEFR level of Italian (_Z = not assessed), at their main municipality of work, with totals."
-- unit = "persons"
-- dimensions = ["citizenship_group", "italian_level"]
-- measures = ["workers"]
-- chart = "stacked_bar"
-- sources = ["workers", "territories"]
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

WITH enrolled AS (
    SELECT
        w.citizenship_group,
        -- Not assessed is a category of its own, so that the margins add up.
        COALESCE(w.italian_level, '_Z') AS italian_level
    FROM workers w
    JOIN territories t ON t.istat_code = w.istat_code
    WHERE w.year = $year
      AND w.in_registry
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
)
SELECT
    CASE WHEN grouping(citizenship_group) = 1 THEN '_T' ELSE citizenship_group END AS citizenship_group,
    CASE WHEN grouping(italian_level) = 1 THEN '_T' ELSE italian_level END AS italian_level,
    count(*) AS workers
FROM enrolled
GROUP BY CUBE (citizenship_group, italian_level)
ORDER BY
    -- Italian, EU, non-EU, total; levels from A1 up, then native, not assessed, total.
    CASE citizenship_group WHEN 'IT' THEN 1 WHEN 'EU' THEN 2 WHEN 'NON_EU' THEN 3 WHEN '_T' THEN 9 ELSE 5 END,
    citizenship_group,
    CASE italian_level
        WHEN 'A1' THEN 1 WHEN 'A2' THEN 2 WHEN 'B1' THEN 3 WHEN 'B2' THEN 4
        WHEN 'C1' THEN 5 WHEN 'C2' THEN 6 WHEN 'native' THEN 7 WHEN '_Z' THEN 8 WHEN '_T' THEN 9
        ELSE 10
    END,
    italian_level
