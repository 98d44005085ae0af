-- id = "staff_hires"
-- theme = "staff"
-- title_it = "Assunzioni tramite gli sportelli per sesso e cittadinanza"
-- title_en = "Hires through the desks by sex and citizenship"
-- description_it = "Persone assunte con un contratto iniziato nell'anno che nasce dall'abbinamento di uno sportello (contratti con request_id valorizzato), per sesso e gruppo di cittadinanza del lavoratore (IT_EU = italiani e comunitari, NON_EU = extracomunitari), nel comune di lavoro del contratto; chi è assunto più volte nell'anno conta una volta. L'obiettivo annuale di S.T.A.F.F. è mostrato solo quando i filtri coprono l'intero territorio del progetto."
-- description_en = "People hired on a contract that started in the year and came from a desk's matching (contracts with a request_id), by the worker's sex and citizenship group (IT_EU = Italians and EU citizens, NON_EU = non-EU citizens), at the contract's municipality of work; a person hired more than once in the year counts once. The S.T.A.F.F. yearly target is shown only when the filters cover the project's whole territory."
-- unit = "persons"
-- dimensions = ["sex", "citizenship_group"]
-- measures = ["actual", "target"]
-- chart = "target_vs_actual"
-- sources = ["contracts", "workers", "territories", "project_targets", "projects"]
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
-- target_ids = ["hires"]

WITH hired AS (
    -- Contracts started in the year that a desk matched.
    SELECT
        c.worker_id,
        w.sex,
        CASE WHEN w.citizenship_group IN ('IT', 'EU') THEN 'IT_EU' ELSE 'NON_EU' END AS citizenship_group
    FROM contracts c
    JOIN workers w ON w.worker_id = c.worker_id
    JOIN territories t ON t.istat_code = c.istat_code
    WHERE c.year = $year
      AND c.request_id IS NOT NULL
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
actual AS (
    -- Persons, not contracts: the targets count people hired. A worker has
    -- one sex and one citizenship, so the margins still add up.
    SELECT
        CASE WHEN grouping(sex) = 1 THEN '_T' ELSE sex END AS sex,
        CASE WHEN grouping(citizenship_group) = 1 THEN '_T' ELSE citizenship_group END AS citizenship_group,
        count(DISTINCT worker_id) AS actual
    FROM hired
    GROUP BY CUBE (sex, citizenship_group)
),
grid AS (
    SELECT s.sex, g.citizenship_group
    FROM (VALUES ('F'), ('M'), ('_T')) AS s(sex)
    CROSS JOIN (VALUES ('IT_EU'), ('NON_EU'), ('_T')) AS g(citizenship_group)
),
target AS (
    -- Targets are for the project's whole territory only.
    SELECT
        COALESCE(pt.sex, '_T') AS sex,
        COALESCE(pt.citizenship_group, '_T') AS citizenship_group,
        pt.target_value
    FROM project_targets pt
    JOIN projects p ON p.project_id = pt.project_id
    WHERE pt.project_id = 'staff'
      AND pt.target_id = 'hires'
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
