-- id = "trainings_assistants"
-- theme = "support"
-- title_it = "Corsi di formazione per assistenti familiari per distretto"
-- title_en = "Training courses for family assistants by district"
-- description_it = "Corsi per assistenti familiari (trainings con destinatari assistants) iniziati nell'anno, per ambito distrettuale in cui si sono tenuti e in totale: iscritti, persone che hanno concluso il corso, certificati, numero di corsi e ore di corso."
-- description_en = "Courses for family assistants (trainings with audience assistants) that started in the year, by the district where they were held and in total: people enrolled, people who completed, people certified, number of courses and course hours."
-- unit = "persons"
-- dimensions = ["district"]
-- measures = ["enrolled", "completed", "certified", "courses", "hours"]
-- chart = "bar"
-- sources = ["trainings", "territories"]
--
-- [disclosure]
-- count = "enrolled"
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

WITH district_province AS (
    -- trainings names the district only; the province comes from the territories.
    SELECT DISTINCT district, province_code
    FROM territories
),
courses AS (
    SELECT tr.district, tr.enrolled, tr.completed, tr.certified, tr.hours
    FROM trainings tr
    -- LEFT: a course whose district is unknown to territories still counts
    -- when no province is asked for. Each district lies in one province.
    LEFT JOIN district_province dp ON dp.district = tr.district
    WHERE tr.year = $year
      AND tr.audience = 'assistants'
      AND ($district IS NULL OR tr.district = $district)
      AND ($province IS NULL OR dp.province_code = $province)
),
counted AS (
    SELECT
        CASE WHEN grouping(district) = 1 THEN '_T' ELSE district END AS district,
        COALESCE(sum(enrolled), 0) AS enrolled,
        COALESCE(sum(completed), 0) AS completed,
        COALESCE(sum(certified), 0) AS certified,
        count(*) AS courses,
        COALESCE(sum(hours), 0) AS hours
    FROM courses
    GROUP BY GROUPING SETS ((district), ())
)
SELECT district, enrolled, completed, certified, courses, hours
FROM counted
ORDER BY district = '_T', district
