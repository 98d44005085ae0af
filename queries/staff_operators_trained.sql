-- id = "staff_operators_trained"
-- theme = "staff"
-- title_it = "Operatori della rete formati e ore di formazione per distretto"
-- title_en = "Network operators trained and training hours by district"
-- description_it = "Corsi per gli operatori della rete (trainings con destinatari operators) iniziati nell'anno, per ambito distrettuale in cui si sono tenuti: persone che hanno concluso il corso e ore di corso (somma della durata dei corsi). Gli obiettivi di S.T.A.F.F. sono per distretto (Cremona, Crema, Casalmaggiore) e, per il totale, la loro somma; l'obiettivo del totale è mostrato solo senza filtro di distretto, e nessun obiettivo fuori dal territorio del progetto."
-- description_en = "Courses for the network's operators (trainings with audience operators) that started in the year, by the district where they were held: people who completed the course, and course hours (sum of the courses' lengths). The S.T.A.F.F. targets are per district (Cremona, Crema, Casalmaggiore) and, for the total, their sum; the total's target is shown only without a district filter, and there is no target outside the project's territory."
-- unit = "persons"
-- dimensions = ["district"]
-- measures = ["completed", "target", "hours", "hours_target", "courses"]
-- chart = "target_vs_actual"
-- sources = ["trainings", "territories", "project_targets", "projects"]
--
-- [disclosure]
-- count = "completed"
-- public = ["target", "hours_target"]
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
-- default = "019"
-- description = "ISTAT province code; S.T.A.F.F. covers the province of Cremona (019)"
--
-- [targets]
-- project = "staff"
-- target_ids = ["operators_trained_cremona", "operators_trained_crema", "operators_trained_casalmaggiore", "operators_trained", "training_hours_cremona", "training_hours_crema", "training_hours_casalmaggiore", "training_hours"]

WITH district_province AS (
    -- trainings names the district only; the province comes from the territories.
    SELECT DISTINCT district, province_code
    FROM territories
),
courses AS (
    SELECT tr.district, tr.completed, tr.hours
    FROM trainings tr
    -- LEFT: a course whose district is unknown to territories still counts
    -- when no province is asked for. Each district lies in one province.
    LEFT JOIN district_province dp ON dp.district = tr.district
    WHERE tr.year = $year
      AND tr.audience = 'operators'
      AND ($district IS NULL OR tr.district = $district)
      AND ($province IS NULL OR dp.province_code = $province)
),
actual AS (
    SELECT district, sum(completed) AS completed, sum(hours) AS hours, count(*) AS courses
    FROM courses
    GROUP BY district
),
project_districts AS (
    -- The districts S.T.A.F.F. set a target for (target ids end in the district's
    -- name), within the filters, so that they show even without a course.
    SELECT DISTINCT t.district
    FROM territories t
    JOIN projects p ON p.province_code = t.province_code
    JOIN project_targets pt
      ON pt.project_id = p.project_id
     AND pt.target_id = 'operators_trained_' || lower(t.district)
    WHERE p.project_id = 'staff'
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
rows_by_district AS (
    SELECT d.district, COALESCE(a.completed, 0) AS completed, COALESCE(a.hours, 0) AS hours, COALESCE(a.courses, 0) AS courses
    FROM (SELECT district FROM actual UNION SELECT district FROM project_districts) d
    LEFT JOIN actual a ON a.district = d.district
),
table_with_total AS (
    SELECT
        CASE WHEN grouping(district) = 1 THEN '_T' ELSE district END AS district,
        COALESCE(sum(completed), 0) AS completed,
        COALESCE(sum(hours), 0) AS hours,
        COALESCE(sum(courses), 0) AS courses
    FROM rows_by_district
    GROUP BY GROUPING SETS ((district), ())
),
target AS (
    -- Per-district targets, operators_trained_<district> and
    -- training_hours_<district>, within the project's province.
    SELECT
        dp.district,
        max(CASE WHEN pt.target_id = 'operators_trained_' || lower(dp.district) THEN pt.target_value END) AS target,
        max(CASE WHEN pt.target_id = 'training_hours_' || lower(dp.district) THEN pt.target_value END) AS hours_target
    FROM project_targets pt
    JOIN projects p ON p.project_id = pt.project_id
    JOIN district_province dp ON dp.province_code = p.province_code
    WHERE pt.project_id = 'staff'
      AND ($province IS NULL OR p.province_code = $province)
    GROUP BY dp.district
    UNION ALL
    -- The project's totals (the sums 55 and 36), for the whole territory only.
    SELECT
        '_T' AS district,
        max(CASE WHEN pt.target_id = 'operators_trained' THEN pt.target_value END) AS target,
        max(CASE WHEN pt.target_id = 'training_hours' THEN pt.target_value END) AS hours_target
    FROM project_targets pt
    JOIN projects p ON p.project_id = pt.project_id
    WHERE pt.project_id = 'staff'
      AND pt.target_id IN ('operators_trained', 'training_hours')
      AND $district IS NULL
      AND ($province IS NULL OR p.province_code = $province)
    -- Grouped rather than global: with no totals there is no row, which the
    -- LEFT JOIN below reads as no target, just as a row of NULLs; and a
    -- cluster answers a global aggregate under UNION ALL once per partition.
    GROUP BY pt.project_id
)
SELECT
    r.district,
    r.completed,
    tg.target,
    r.hours,
    tg.hours_target,
    r.courses
FROM table_with_total r
LEFT JOIN target tg ON tg.district = r.district
ORDER BY r.district = '_T', r.district
