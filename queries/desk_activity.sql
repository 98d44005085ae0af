-- id = "desk_activity"
-- theme = "desks"
-- title_it = "Attività degli sportelli per mese e servizio"
-- title_en = "Desk activity by month and service"
-- description_it = "Accessi agli sportelli (righe di desk_contacts) nei mesi dell'anno, per servizio erogato e in totale, con i minuti complessivi; gli sportelli sono localizzati nel comune della sede."
-- description_en = "Desk contacts (rows of desk_contacts) in each month of the year, by service given and in total, with the total minutes; desks are located at the municipality of their office."
-- unit = "services"
-- dimensions = ["month", "service"]
-- measures = ["contacts", "minutes"]
-- chart = "line"
-- time_dimension = "month"
-- sources = ["desk_contacts", "desks", "territories"]
--
-- [disclosure]
-- count = "contacts"
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

WITH contacts AS (
    SELECT
        to_char(k.contact_date, '%Y-%m') AS month,
        k.service,
        k.minutes
    FROM desk_contacts k
    JOIN desks d ON d.desk_id = k.desk_id
    JOIN territories t ON t.istat_code = d.istat_code
    WHERE k.year = $year
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
counted AS (
    SELECT
        month,
        CASE WHEN grouping(service) = 1 THEN '_T' ELSE service END AS service,
        count(*) AS contacts,
        sum(minutes) AS minutes
    FROM contacts
    GROUP BY GROUPING SETS ((month, service), (month))
)
SELECT month, service, contacts, minutes
FROM counted
ORDER BY month, service = '_T', service
