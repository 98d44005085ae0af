-- id = "matching_rate"
-- theme = "demand"
-- title_it = "Esito delle richieste delle famiglie e tempi di abbinamento per distretto"
-- title_en = "Outcome of family requests and time to match by district"
-- description_it = "Richieste di un'assistente familiare chiuse nell'anno (family_requests con data di chiusura nell'anno), per ambito distrettuale dello sportello che le ha ricevute: quota chiusa con un'assunzione e mediana dei giorni tra apertura e chiusura delle richieste andate a buon fine, con il totale."
-- description_en = "Requests for a family assistant closed in the year (family_requests with a closing date in the year), by district of the desk that took them: share closed with a hire, and median days from opening to closing of the requests that ended in a hire, with the total."
-- unit = "share"
-- dimensions = ["district"]
-- measures = ["hire_share", "median_days_to_hire", "hired", "closed"]
-- chart = "bar"
-- sources = ["family_requests", "desks", "territories"]
--
-- [disclosure]
-- count = "closed"
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

WITH closed AS (
    SELECT
        t.district,
        r.outcome = 'hired' AS hired,
        -- Days from request to hire; only for the requests that ended in one.
        CASE WHEN r.outcome = 'hired' THEN r.closed_on - r.opened_on END AS days_to_hire
    FROM family_requests r
    JOIN desks d ON d.desk_id = r.desk_id
    JOIN territories t ON t.istat_code = d.istat_code
    -- Closed in the year, whenever opened; open requests have no closing date.
    WHERE r.closed_on >= make_date(CAST($year AS INT), 1, 1)
      AND r.closed_on <= make_date(CAST($year AS INT), 12, 31)
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
counted AS (
    SELECT
        CASE WHEN grouping(district) = 1 THEN '_T' ELSE district END AS district,
        sum(CASE WHEN hired THEN 1 ELSE 0 END) AS hired,
        count(*) AS closed,
        median(days_to_hire) AS median_days_to_hire
    FROM closed
    GROUP BY GROUPING SETS ((district), ())
)
SELECT
    district,
    round(CAST(hired AS DOUBLE) / NULLIF(closed, 0), 4) AS hire_share,
    median_days_to_hire,
    hired,
    closed
FROM counted
ORDER BY district = '_T', district
