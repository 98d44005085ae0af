-- id = "pay_vs_minimum"
-- theme = "contracts"
-- title_it = "Retribuzione lorda rispetto ai minimi del CCNL per livello e convivenza"
-- title_en = "Gross pay against the CCNL minimum by level and live-in status"
-- description_it = "Contratti iniziati nell'anno, per livello CCNL e convivenza (true convivente, paga mensile; false non convivente, paga oraria), nel comune di lavoro: mediana del rapporto tra retribuzione lorda e minimo, mediana della retribuzione, minimo del CCNL e quota pagata sotto il minimo. I minimi sono quelli dell'anno in ccnl_pay_scales; se l'anno manca si usa l'anno più vicino precedente e, per gli anni prima del primo disponibile (2024 nella tabella fornita), il primo anno disponibile (scale_year dice quale). I minimi escludono l'indennità dei livelli D/DS."
-- description_en = "Contracts started in the year, by CCNL level and live-in status (true live-in, monthly pay; false not live-in, hourly pay), at the municipality of work: median ratio of gross pay to the minimum, median pay, the CCNL minimum, and the share paid below it. The minima are the year's in ccnl_pay_scales; for a missing year the nearest earlier year is used and, for years before the first available (2024 in the committed table), the first available year (scale_year says which). The minima exclude the D/DS allowance."
-- unit = "share"
-- dimensions = ["ccnl_level", "live_in"]
-- measures = ["median_ratio", "median_pay_eur", "minimum_eur", "share_below_minimum", "contracts", "scale_year"]
-- chart = "grouped_bar"
-- sources = ["contracts", "ccnl_pay_scales", "territories"]
--
-- [disclosure]
-- count = "contracts"
-- public = ["minimum_eur", "scale_year"]
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

WITH scale_year AS (
    -- The year whose minima apply: the year itself or the nearest earlier one;
    -- before the table starts, its first year.
    SELECT COALESCE(
        (SELECT max(year) FROM ccnl_pay_scales WHERE year <= CAST($year AS INT)),
        (SELECT min(year) FROM ccnl_pay_scales)
    ) AS year
),
minima AS (
    SELECT p.year, p.ccnl_level, p.live_in, p.pay_unit, p.minimum_eur
    FROM ccnl_pay_scales p
    JOIN scale_year s ON s.year = p.year
),
paid AS (
    SELECT
        c.ccnl_level,
        c.live_in,
        c.gross_pay_eur,
        m.minimum_eur,
        m.year AS scale_year
    FROM contracts c
    JOIN territories t ON t.istat_code = c.istat_code
    -- Same level, same live-in status and so the same pay unit (month or hour).
    JOIN minima m ON m.ccnl_level = c.ccnl_level AND m.live_in = c.live_in AND m.pay_unit = c.pay_unit
    WHERE c.year = $year
      AND ($district IS NULL OR t.district = $district)
      AND ($province IS NULL OR t.province_code = $province)
),
by_cell AS (
    SELECT
        ccnl_level,
        CASE WHEN live_in THEN 'true' ELSE 'false' END AS live_in,
        round(median(gross_pay_eur / minimum_eur), 4) AS median_ratio,
        round(median(gross_pay_eur), 2) AS median_pay_eur,
        max(minimum_eur) AS minimum_eur,
        round(CAST(sum(CASE WHEN gross_pay_eur < minimum_eur THEN 1 ELSE 0 END) AS DOUBLE) / count(*), 4) AS share_below_minimum,
        count(*) AS contracts,
        max(scale_year) AS scale_year
    FROM paid
    -- No totals: monthly and hourly pay cannot be pooled, nor medians added.
    GROUP BY ccnl_level, live_in
)
SELECT
    ccnl_level,
    live_in,
    median_ratio,
    median_pay_eur,
    minimum_eur,
    share_below_minimum,
    contracts,
    scale_year
FROM by_cell
ORDER BY ccnl_level, live_in DESC
