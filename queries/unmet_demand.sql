-- id = "unmet_demand"
-- theme = "demand"
-- title_it = "Domanda non soddisfatta per competenza richiesta e distretto"
-- title_en = "Unmet demand by skill required and district"
-- description_it = "Richieste delle famiglie aperte nell'anno e chiuse senza abbinamento o ritirate (outcome unmatched o withdrawn), per competenza richiesta (codici di skills_required; _Z = nessuna competenza indicata) e ambito distrettuale di residenza della famiglia, con il totale per competenza. Una richiesta con più competenze è contata sotto ciascuna, quindi le competenze non si sommano e non hanno totale."
-- description_en = "Family requests opened in the year that closed without a match or were withdrawn (outcome unmatched or withdrawn), by skill required (codes of skills_required; _Z = no skill given) and district of the household's residence, with the total over districts for each skill. A request asking for several skills counts under each, so skills do not add up and have no total."
-- unit = "requests"
-- dimensions = ["skill", "district"]
-- measures = ["requests"]
-- chart = "grouped_bar"
-- sources = ["family_requests", "households", "territories"]
--
-- [disclosure]
-- count = "requests"
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

WITH unmet AS (
    SELECT r.request_id, r.skills_required, t.district
    FROM family_requests r
    JOIN households h ON h.household_id = r.household_id
    JOIN territories t ON t.istat_code = h.istat_code
    WHERE r.year = $year
      AND r.outcome IN ('unmatched', 'withdrawn')
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
listed AS (
    -- One row per skill of the ';'-separated list (unnest in the select
    -- list: DataFusion does not plan a lateral unnest over a column).
    SELECT request_id, district, unnest(string_to_array(skills_required, ';')) AS skill
    FROM unmet
    WHERE skills_required IS NOT NULL AND trim(skills_required) <> ''
),
skills AS (
    -- A skill listed twice in one request still counts the request once.
    SELECT DISTINCT request_id, district, trim(skill) AS skill
    FROM listed
    WHERE trim(skill) <> ''
    UNION
    SELECT request_id, district, '_Z' AS skill
    FROM unmet
    WHERE skills_required IS NULL OR trim(skills_required) = ''
),
counted AS (
    SELECT
        skill,
        CASE WHEN grouping(district) = 1 THEN '_T' ELSE district END AS district,
        count(*) AS requests
    FROM skills
    GROUP BY GROUPING SETS ((skill, district), (skill))
)
SELECT skill, district, requests
FROM counted
ORDER BY skill = '_Z', skill, district = '_T', district
