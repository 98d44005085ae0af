-- id = "weekly_hours"
-- theme = "contracts"
-- title_it = "Contratti per classe di orario settimanale"
-- title_en = "Contracts by weekly-hours class"
-- description_it = "Contratti iniziati nell'anno per classe di ore settimanali contrattuali, nelle classi dell'Osservatorio INPS sui lavoratori domestici (<10, 10-14, ..., 35-39, 40+), nel comune di lavoro, con il totale."
-- description_en = "Contracts started in the year by class of contractual weekly hours, in the classes of INPS's observatory on domestic workers (<10, 10-14, ..., 35-39, 40+), at the municipality of work, with the total."
-- unit = "contracts"
-- dimensions = ["hours_class"]
-- measures = ["contracts"]
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

WITH classes AS (
    -- Every class, so that empty classes show as zero; lower bound for the order.
    SELECT v.hours_class, v.lower_bound
    FROM (VALUES
        ('<10', 0), ('10-14', 10), ('15-19', 15), ('20-24', 20),
        ('25-29', 25), ('30-34', 30), ('35-39', 35), ('40+', 40)
    ) AS v(hours_class, lower_bound)
),
started AS (
    SELECT
        CASE
            WHEN c.weekly_hours < 10 THEN '<10'
            WHEN c.weekly_hours < 15 THEN '10-14'
            WHEN c.weekly_hours < 20 THEN '15-19'
            WHEN c.weekly_hours < 25 THEN '20-24'
            WHEN c.weekly_hours < 30 THEN '25-29'
            WHEN c.weekly_hours < 35 THEN '30-34'
            WHEN c.weekly_hours < 40 THEN '35-39'
            ELSE '40+'
        END AS hours_class
    FROM contracts c
    JOIN territories t ON t.istat_code = c.istat_code
    WHERE c.year = $year
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
counted AS (
    -- One pass gives the classes and the total.
    SELECT CASE WHEN grouping(hours_class) = 1 THEN '_T' ELSE hours_class END AS hours_class,
           count(*) AS contracts
    FROM started
    GROUP BY GROUPING SETS ((hours_class), ())
)
SELECT k.hours_class, COALESCE(n.contracts, 0) AS contracts
FROM (
    SELECT hours_class, lower_bound FROM classes
    UNION ALL
    SELECT '_T', 1000
) AS k
LEFT JOIN counted n ON n.hours_class = k.hours_class
ORDER BY k.lower_bound
