-- id = "subsidies_by_kind"
-- theme = "support"
-- title_it = "Contributi alle famiglie per tipo"
-- title_en = "Subsidies to households by kind"
-- description_it = "Contributi concessi nell'anno alle famiglie (tabella subsidies, per data di concessione), per tipo (bonus assunzione, sgravio contributivo, costo della sostituzione, voucher formativo) e in totale, nel comune di residenza della famiglia: numero e importo complessivo in euro."
-- description_en = "Subsidies granted in the year to households (subsidies table, by grant date), by kind (hiring bonus, contribution relief, substitution cost, training voucher) and in total, at the household's municipality of residence: number and total amount in euro."
-- unit = "services"
-- dimensions = ["subsidy_kind"]
-- measures = ["subsidies", "amount_eur"]
-- chart = "bar"
-- sources = ["subsidies", "households", "territories"]
--
-- [disclosure]
-- count = "subsidies"
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

WITH granted AS (
    SELECT s.subsidy_kind, s.amount_eur
    FROM subsidies s
    JOIN households h ON h.household_id = s.household_id
    JOIN territories t ON t.istat_code = h.istat_code
    WHERE s.year = $year
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
counted AS (
    SELECT
        CASE WHEN grouping(subsidy_kind) = 1 THEN '_T' ELSE subsidy_kind END AS subsidy_kind,
        count(*) AS subsidies,
        round(COALESCE(sum(amount_eur), 0), 2) AS amount_eur
    FROM granted
    GROUP BY GROUPING SETS ((subsidy_kind), ())
)
SELECT subsidy_kind, subsidies, amount_eur
FROM counted
ORDER BY subsidy_kind = '_T', subsidy_kind
