-- id = "context_elderly"
-- theme = "context"
-- title_it = "Popolazione anziana per distretto"
-- title_en = "Elderly population by district"
-- description_it = "Residenti, residenti di 65 anni e più e di 80 anni e più, e le loro quote sul totale, per ambito distrettuale (fuori dalla provincia di Cremona il distretto coincide con la provincia), con il totale. Dati pubblici ISTAT di territories (data di riferimento in datasets/README.md), non un conteggio di persone dell'osservatorio: il conteggio per la riservatezza è il numero di comuni; i comuni senza popolazione nota sono esclusi dalle quote."
-- description_en = "Residents, residents aged 65 and over and aged 80 and over, and their shares of the total, by district (outside the province of Cremona the district is the province), with the total. Public ISTAT figures from territories (reference date in datasets/README.md), not a count of the observatory's people: the count for disclosure control is the number of municipalities; municipalities with no known population are left out of the shares."
-- unit = "share"
-- dimensions = ["district"]
-- measures = ["share_80plus", "share_65plus", "population", "population_65plus", "population_80plus", "municipalities"]
-- chart = "bar"
-- sources = ["territories"]
--
-- [disclosure]
-- count = "municipalities"
-- public = ["share_80plus", "share_65plus", "population", "population_65plus", "population_80plus"]
--
-- [[parameters]]
-- name = "district"
-- type = "text"
-- [[parameters]]
-- name = "province"
-- type = "text"

WITH counted AS (
    SELECT
        CASE WHEN grouping(t.district) = 1 THEN '_T' ELSE t.district END AS district,
        sum(t.population) AS population,
        sum(t.population_65plus) AS population_65plus,
        sum(t.population_80plus) AS population_80plus,
        count(*) AS municipalities
    FROM territories t
    WHERE ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
    GROUP BY GROUPING SETS ((t.district), ())
    HAVING count(*) > 0
)
SELECT
    district,
    round(CAST(population_80plus AS DOUBLE) / NULLIF(population, 0), 4) AS share_80plus,
    round(CAST(population_65plus AS DOUBLE) / NULLIF(population, 0), 4) AS share_65plus,
    population,
    population_65plus,
    population_80plus,
    municipalities
FROM counted
ORDER BY district = '_T', district
