-- id = "survey_irregular_share"
-- theme = "survey"
-- title_it = "Quota di lavoro non o parzialmente dichiarato"
-- title_en = "Share of undeclared or partly declared work"
-- description_it = "Quota di rapporti non dichiarati o dichiarati solo in parte, per gruppo di cittadinanza. Stima dall'indagine campionaria dell'osservatorio (campione stratificato a due stadi: strati = ambiti, UPC = comuni), con errore standard linearizzato e intervallo di confidenza al 95% su scala logit (svyciprop, method = \"logit\") come il pacchetto R survey; i sottogruppi usano l'intero disegno (come svyby). Flag u: meno di 30 rispondenti o CV oltre il 33%."
-- description_en = "Share of undeclared or partly declared employment, by citizenship group. Estimated from the observatory's sample survey (stratified two-stage sample: strata = districts, PSUs = municipalities), with a linearised standard error and a 95% logit confidence interval (svyciprop, method = \"logit\") as R's survey package computes them; subgroups use the whole design (as svyby). Flag u: fewer than 30 respondents or a CV above 33%."
-- unit = "share"
-- dimensions = ["citizenship_group"]
-- measures = ["share", "se", "ci_low", "ci_high", "respondents"]
-- chart = "bar"
-- sources = ["survey_workers", "territories"]
--
-- [disclosure]
-- count = "respondents"
-- reliability = "unreliable"
--
-- [[parameters]]
-- name = "year"
-- type = "int"
-- default = 2025
-- description = "Survey wave"
-- [[parameters]]
-- name = "district"
-- type = "text"
-- [[parameters]]
-- name = "province"
-- type = "text"

-- Whole strata are selected by the territory filters (strata are districts),
-- which keeps the design valid; subgroups are domains, never a WHERE.
WITH sample AS (
    SELECT s.*, s.citizenship_group AS domain_value
    FROM survey_workers s
    JOIN territories t ON t.istat_code = s.psu
    WHERE s.wave = $year
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
domains AS (
    SELECT DISTINCT domain_value FROM sample
    UNION ALL
    SELECT '_T'
),
estimates AS (
    SELECT d.domain_value,
           svy_prop(s.contract_status <> 'declared', s.weight, s.stratum, s.psu,
                d.domain_value = '_T' OR s.domain_value = d.domain_value) AS e
    FROM sample s CROSS JOIN domains d
    GROUP BY d.domain_value
)
SELECT domain_value AS citizenship_group,
       get_field(e, 'estimate') AS share,
       get_field(e, 'se') AS se,
       get_field(e, 'logit_low') AS ci_low,
       get_field(e, 'logit_high') AS ci_high,
       get_field(e, 'n') AS respondents,
       get_field(e, 'unreliable') AS unreliable
FROM estimates
WHERE e IS NOT NULL
ORDER BY domain_value = '_T', domain_value
