-- id = "survey_family_spending"
-- theme = "survey"
-- title_it = "Spesa mensile media delle famiglie per l'assistenza"
-- title_en = "Families' mean monthly spending on care"
-- description_it = "Spesa mensile media delle famiglie datrici di lavoro per l'assistenza retribuita (euro), per gruppo di cittadinanza dell'assistente; le mancate risposte sono escluse. Stima dall'indagine campionaria dell'osservatorio (campione stratificato a due stadi: strati = ambiti, UPC = comuni), con errore standard linearizzato e intervallo di confidenza al 95% come il pacchetto R survey; i sottogruppi usano l'intero disegno (come svyby). Flag u: meno di 30 rispondenti o CV oltre il 33%."
-- description_en = "Employer families' mean monthly spending on paid care (euro), by the assistant's citizenship group; non-responses are left out. Estimated from the observatory's sample survey (stratified two-stage sample: strata = districts, PSUs = municipalities), with a linearised standard error and a 95% confidence interval as R's survey package computes them; subgroups use the whole design (as svyby). Flag u: fewer than 30 respondents or a CV above 33%."
-- unit = "euro"
-- dimensions = ["citizenship_group"]
-- measures = ["mean_eur", "se", "ci_low", "ci_high", "respondents"]
-- chart = "bar"
-- sources = ["survey_families", "territories"]
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
    SELECT s.*, s.assistant_citizenship_group AS domain_value
    FROM survey_families s
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
           svy_mean(s.monthly_care_spending_eur, s.weight, s.stratum, s.psu,
                d.domain_value = '_T' OR s.domain_value = d.domain_value) AS e
    FROM sample s CROSS JOIN domains d
    GROUP BY d.domain_value
)
SELECT domain_value AS citizenship_group,
       get_field(e, 'estimate') AS mean_eur,
       get_field(e, 'se') AS se,
       get_field(e, 'ci_low') AS ci_low,
       get_field(e, 'ci_high') AS ci_high,
       get_field(e, 'n') AS respondents,
       get_field(e, 'unreliable') AS unreliable
FROM estimates
WHERE e IS NOT NULL
ORDER BY domain_value = '_T', domain_value
