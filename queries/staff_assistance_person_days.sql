-- id = "staff_assistance_person_days"
-- theme = "staff"
-- title_it = "Mediazione culturale e assistenza legale e psicosociale effettivamente erogate"
-- title_en = "Cultural mediation, legal and psychosocial assistance actually delivered"
-- description_it = "Giornate/persona di mediazione culturale (cultural_mediation), assistenza tecnica, legale e amministrativa (legal_assistance) e assistenza socio-sanitaria e psicologica (psychosocial_assistance) erogate dagli sportelli nell'anno: coppie distinte (persona servita, giorno) in desk_contacts, con le persone distinte e i minuti complessivi. La persona è localizzata nel suo comune (di lavoro prevalente o di residenza della famiglia). I dati non registrano l'operatore, quindi le giornate sono contate dal lato dell'utente. L'obiettivo annuale di S.T.A.F.F. è mostrato solo quando i filtri coprono l'intero territorio del progetto."
-- description_en = "Person-days of cultural mediation (cultural_mediation), technical, legal and administrative assistance (legal_assistance) and social, health and psychological assistance (psychosocial_assistance) delivered by the desks in the year: distinct (person served, day) pairs in desk_contacts, with the distinct persons and the total minutes. The person is located at their municipality (main municipality of work, or the household's residence). The data do not record the operator, so days are counted on the user's side. The S.T.A.F.F. yearly target is shown only when the filters cover the project's whole territory."
-- unit = "person_days"
-- dimensions = ["service"]
-- measures = ["person_days", "target", "persons", "minutes"]
-- chart = "target_vs_actual"
-- sources = ["desk_contacts", "workers", "households", "territories", "project_targets", "projects"]
--
-- [disclosure]
-- count = "persons"
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
-- target_ids = ["mediation_person_days", "legal_assistance_person_days", "psychosocial_assistance_person_days"]

WITH services AS (
    -- The three services the project measures, with the target each is held to.
    SELECT v.service, v.target_id
    FROM (VALUES
        ('cultural_mediation', 'mediation_person_days'),
        ('legal_assistance', 'legal_assistance_person_days'),
        ('psychosocial_assistance', 'psychosocial_assistance_person_days')
    ) AS v(service, target_id)
),
contacts AS (
    SELECT
        k.service,
        -- Worker and household pseudonyms are kept apart by the kind of person.
        k.person_kind || ':' || COALESCE(k.worker_id, k.household_id) AS person,
        k.contact_date,
        k.minutes
    FROM desk_contacts k
    LEFT JOIN workers w ON w.worker_id = k.worker_id
    LEFT JOIN households h ON h.household_id = k.household_id
    JOIN territories t ON t.istat_code = COALESCE(w.istat_code, h.istat_code)
    WHERE k.year = $year
      AND k.service IN ('cultural_mediation', 'legal_assistance', 'psychosocial_assistance')
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
person_days AS (
    -- Two contacts of one person on one day make one person-day.
    SELECT service, person, contact_date, sum(minutes) AS minutes
    FROM contacts
    GROUP BY service, person, contact_date
),
actual AS (
    SELECT
        service,
        count(*) AS person_days,
        count(DISTINCT person) AS persons,
        sum(minutes) AS minutes
    FROM person_days
    GROUP BY service
),
target AS (
    -- Targets are for the project's whole territory only.
    SELECT pt.target_id, pt.target_value
    FROM project_targets pt
    JOIN projects p ON p.project_id = pt.project_id
    WHERE pt.project_id = 'staff'
      AND $district IS NULL
      AND ($province IS NULL OR p.province_code = $province)
)
SELECT
    s.service,
    COALESCE(a.person_days, 0) AS person_days,
    tg.target_value AS target,
    COALESCE(a.persons, 0) AS persons,
    COALESCE(a.minutes, 0) AS minutes
FROM services s
LEFT JOIN actual a ON a.service = s.service
LEFT JOIN target tg ON tg.target_id = s.target_id
ORDER BY s.service
