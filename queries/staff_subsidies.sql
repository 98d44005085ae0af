-- id = "staff_subsidies"
-- theme = "staff"
-- title_it = "Sussidi erogati alle famiglie"
-- title_en = "Subsidies granted to households"
-- description_it = "Sussidi concessi nell'anno alle famiglie che impiegano un'assistente familiare (tabella subsidies, per data di concessione, di ogni tipo e finanziamento), nel comune di residenza della famiglia: numero e importo complessivo in euro. L'obiettivo annuale di S.T.A.F.F. (numero di sussidi) è mostrato solo quando i filtri coprono l'intero territorio del progetto."
-- description_en = "Subsidies granted in the year to households employing a family assistant (subsidies table, by grant date, every kind and funder), at the household's municipality of residence: number and total amount in euro. The S.T.A.F.F. yearly target (number of subsidies) is shown only when the filters cover the project's whole territory."
-- unit = "services"
-- dimensions = []
-- measures = ["actual", "target", "amount_eur"]
-- chart = "target_vs_actual"
-- sources = ["subsidies", "households", "territories", "project_targets", "projects"]
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
-- target_ids = ["subsidies"]

WITH actual AS (
    SELECT
        count(*) AS actual,
        COALESCE(sum(s.amount_eur), 0) AS amount_eur
    FROM subsidies s
    JOIN households h ON h.household_id = s.household_id
    JOIN territories t ON t.istat_code = h.istat_code
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
      AND pt.target_id = 'subsidies'
      AND $district IS NULL
      AND ($province IS NULL OR p.province_code = $province)
)
SELECT
    a.actual,
    tg.target_value AS target,
    round(a.amount_eur, 2) AS amount_eur
FROM actual a
LEFT JOIN target tg ON TRUE
