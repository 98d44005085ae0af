-- id = "staff_substitutions"
-- theme = "staff"
-- title_it = "Sostituzioni temporanee dell'assistente familiare"
-- title_en = "Temporary substitutions of the family assistant"
-- description_it = "Sostituzioni temporanee iniziate nell'anno (tabella substitutions, per data di inizio), nel comune di lavoro del contratto sostituito. L'obiettivo annuale di S.T.A.F.F. è mostrato solo quando i filtri coprono l'intero territorio del progetto."
-- description_en = "Temporary substitutions that started in the year (substitutions table, by start date), at the municipality of work of the contract covered. The S.T.A.F.F. yearly target is shown only when the filters cover the project's whole territory."
-- unit = "services"
-- dimensions = []
-- measures = ["actual", "target"]
-- chart = "target_vs_actual"
-- sources = ["substitutions", "contracts", "territories", "project_targets", "projects"]
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
-- target_ids = ["substitutions"]

WITH actual AS (
    SELECT count(*) AS actual
    FROM substitutions s
    JOIN contracts c ON c.contract_id = s.contract_id
    JOIN territories t ON t.istat_code = c.istat_code
    WHERE s.year = $year
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
target AS (
    -- Targets are for the project's whole territory only.
    SELECT pt.target_value
    FROM project_targets pt
    JOIN projects p ON p.project_id = pt.project_id
    WHERE pt.project_id = 'staff'
      AND pt.target_id = 'substitutions'
      AND $district IS NULL
      AND ($province IS NULL OR p.province_code = $province)
)
SELECT
    a.actual,
    tg.target_value AS target
FROM actual a
LEFT JOIN target tg ON TRUE
