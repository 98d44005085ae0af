-- id = "staff_households_served"
-- theme = "staff"
-- title_it = "Nuclei familiari beneficiari del servizio"
-- title_en = "Households benefiting from the service"
-- description_it = "Famiglie distinte con almeno un accesso a uno sportello della rete nell'anno (desk_contacts con utente famiglia, qualunque servizio), localizzate nel comune di residenza; ogni famiglia conta una volta. L'obiettivo annuale di S.T.A.F.F. è mostrato solo quando i filtri coprono l'intero territorio del progetto."
-- description_en = "Distinct households with at least one contact at a desk of the network in the year (desk_contacts rows for a family, any service), located at their municipality of residence; each household counts once. The S.T.A.F.F. yearly target is shown only when the filters cover the project's whole territory."
-- unit = "households"
-- dimensions = []
-- measures = ["actual", "target"]
-- chart = "target_vs_actual"
-- sources = ["desk_contacts", "households", "territories", "project_targets", "projects"]
--
-- [disclosure]
-- count = "actual"
-- public = ["target"]
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
-- target_ids = ["households_served"]

WITH served AS (
    SELECT DISTINCT k.household_id
    FROM desk_contacts k
    WHERE k.year = $year
      AND k.person_kind = 'family'
      AND k.household_id IS NOT NULL
),
actual AS (
    SELECT count(*) AS actual
    FROM served s
    JOIN households h ON h.household_id = s.household_id
    JOIN territories t ON t.istat_code = h.istat_code
    WHERE ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
target AS (
    -- Targets are for the project's whole territory only.
    SELECT pt.target_value
    FROM project_targets pt
    JOIN projects p ON p.project_id = pt.project_id
    WHERE pt.project_id = 'staff'
      AND pt.target_id = 'households_served'
      AND $district IS NULL
      AND ($province IS NULL OR p.province_code = $province)
)
SELECT
    a.actual,
    tg.target_value AS target
FROM actual a
LEFT JOIN target tg ON TRUE
