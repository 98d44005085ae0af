-- id = "staff_beneficiaries"
-- theme = "staff"
-- title_it = "Beneficiari del servizio per sesso e cittadinanza"
-- title_en = "Service beneficiaries by sex and citizenship"
-- description_it = "Assistenti familiari distinti serviti almeno una volta nell'anno da uno sportello della rete (accessi di desk_contacts con un lavoratore, qualunque servizio), per sesso e gruppo di cittadinanza (IT_EU = italiani e comunitari, NON_EU = extracomunitari), localizzati nel comune di lavoro prevalente; ogni persona conta una volta sola. Le famiglie servite sono contate a parte (staff_households_served). L'obiettivo annuale di S.T.A.F.F. è mostrato solo quando i filtri coprono l'intero territorio del progetto."
-- description_en = "Distinct family assistants served at least once in the year by a desk of the network (desk_contacts rows with a worker, any service), by sex and citizenship group (IT_EU = Italians and EU citizens, NON_EU = non-EU citizens), located at their main municipality of work; each person counts once. Households served are counted separately (staff_households_served). The S.T.A.F.F. yearly target is shown only when the filters cover the project's whole territory."
-- unit = "persons"
-- dimensions = ["sex", "citizenship_group"]
-- measures = ["actual", "target"]
-- chart = "target_vs_actual"
-- sources = ["desk_contacts", "workers", "territories", "project_targets", "projects"]
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
-- target_ids = ["beneficiaries"]

WITH served AS (
    -- Every worker with at least one contact in the year, once.
    SELECT DISTINCT k.worker_id
    FROM desk_contacts k
    WHERE k.year = $year
      AND k.worker_id IS NOT NULL
),
persons AS (
    SELECT
        w.sex,
        -- The project's grouping: Italians count with EU citizens.
        CASE WHEN w.citizenship_group IN ('IT', 'EU') THEN 'IT_EU' ELSE 'NON_EU' END AS citizenship_group
    FROM served s
    JOIN workers w ON w.worker_id = s.worker_id
    JOIN territories t ON t.istat_code = w.istat_code
    WHERE ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
actual AS (
    SELECT
        CASE WHEN grouping(sex) = 1 THEN '_T' ELSE sex END AS sex,
        CASE WHEN grouping(citizenship_group) = 1 THEN '_T' ELSE citizenship_group END AS citizenship_group,
        count(*) AS actual
    FROM persons
    GROUP BY CUBE (sex, citizenship_group)
),
grid AS (
    -- Every cell of the project's table, so that each target shows even
    -- where nobody was served.
    SELECT s.sex, g.citizenship_group
    FROM (VALUES ('F'), ('M'), ('_T')) AS s(sex)
    CROSS JOIN (VALUES ('IT_EU'), ('NON_EU'), ('_T')) AS g(citizenship_group)
),
target AS (
    -- The targets are commitments for the project's whole territory: a
    -- district, or another province, has none.
    SELECT
        COALESCE(pt.sex, '_T') AS sex,
        COALESCE(pt.citizenship_group, '_T') AS citizenship_group,
        pt.target_value
    FROM project_targets pt
    JOIN projects p ON p.project_id = pt.project_id
    WHERE pt.project_id = 'staff'
      AND pt.target_id = 'beneficiaries'
      AND $district IS NULL
      AND ($province IS NULL OR p.province_code = $province)
)
SELECT
    g.sex,
    g.citizenship_group,
    COALESCE(a.actual, 0) AS actual,
    tg.target_value AS target
FROM grid g
LEFT JOIN actual a ON a.sex = g.sex AND a.citizenship_group = g.citizenship_group
LEFT JOIN target tg ON tg.sex = g.sex AND tg.citizenship_group = g.citizenship_group
ORDER BY g.sex, g.citizenship_group
