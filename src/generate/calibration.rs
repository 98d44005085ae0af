//! Public figures the synthetic observatory is calibrated to, each with its
//! source, and the assumptions made where no public figure exists.
//!
//! Owns numbers only; `datasets/README.md` lists the same figures for readers
//! and must change with this file. It must not generate rows.

/// First and last year the synthetic observatory covers.
pub const FIRST_YEAR: i32 = 2016;
pub const LAST_YEAR: i32 = 2025;

/// INPS "Osservatorio sui lavoratori domestici": workers with at least one
/// contribution in the year, as first published. 2017 and 2019 are
/// interpolated; 2025 continues the 2023→2024 trend (−2.0%).
pub const INPS_WORKERS: &[(i32, f64)] = &[
    (2016, 866_747.0),
    (2017, 862_990.0),
    (2018, 859_233.0),
    (2019, 889_978.0),
    (2020, 920_722.0),
    (2021, 961_358.0),
    (2022, 894_299.0),
    (2023, 833_874.0),
    (2024, 817_403.0),
    (2025, 801_055.0),
];

/// Share of women among domestic workers (INPS 2024 release: 88.9%).
pub const SHARE_WOMEN: f64 = 0.889;
/// Share of foreign citizens (INPS 2024: 68.6%).
pub const SHARE_FOREIGN: f64 = 0.686;
/// Share of carers ("badanti") among workers (INPS 2024: 50.5%).
pub const SHARE_CARERS: f64 = 0.505;

/// Citizenship of foreign workers: share of all foreign workers. The five
/// largest are DOMINA on INPS data for 2023 (Romania 123k = 21.3%, Ukraine
/// 90k, Philippines 63k, Peru 36k, Moldova 33k out of ≈574k foreign
/// workers); the rest of the list splits the remaining 40% by assumption.
/// Columns: ISO code, share, EU member, INPS area, share of carers.
pub const FOREIGN_CITIZENSHIPS: &[(&str, f64, bool, &str, f64)] = &[
    ("RO", 0.213, true, "eastern_europe", 0.632),
    ("UA", 0.157, false, "eastern_europe", 0.672),
    ("PH", 0.110, false, "east_asia", 0.162),
    ("PE", 0.063, false, "south_america", 0.45),
    ("MD", 0.057, false, "eastern_europe", 0.60),
    ("GE", 0.030, false, "eastern_europe", 0.849),
    ("LK", 0.032, false, "middle_east_asia", 0.25),
    ("AL", 0.035, false, "eastern_europe", 0.40),
    ("MA", 0.035, false, "north_africa", 0.35),
    ("EC", 0.030, false, "south_america", 0.45),
    ("BG", 0.025, true, "eastern_europe", 0.60),
    ("PL", 0.025, true, "eastern_europe", 0.55),
    ("BD", 0.020, false, "middle_east_asia", 0.15),
    ("IN", 0.020, false, "middle_east_asia", 0.25),
    ("SV", 0.020, false, "central_north_america", 0.30),
    ("RU", 0.015, false, "eastern_europe", 0.60),
    ("SN", 0.015, false, "other_africa", 0.30),
    ("BR", 0.015, false, "south_america", 0.40),
    ("NG", 0.015, false, "other_africa", 0.35),
    ("CN", 0.015, false, "east_asia", 0.10),
    ("DO", 0.015, false, "central_north_america", 0.35),
    ("CO", 0.015, false, "south_america", 0.40),
    ("TN", 0.014, false, "north_africa", 0.30),
    ("CU", 0.009, false, "central_north_america", 0.40),
];

/// Age of workers in 2024 by five-year class (INPS 2024: mode 55-59 at
/// 18.6%, 60+ at 25.7%, under 25 at 1.5%; the other classes by assumption).
/// Columns: lowest age, highest age, share.
pub const AGE_CLASSES: &[(i32, i32, f64)] = &[
    (18, 24, 0.015),
    (25, 29, 0.030),
    (30, 34, 0.050),
    (35, 39, 0.075),
    (40, 44, 0.100),
    (45, 49, 0.127),
    (50, 54, 0.160),
    (55, 59, 0.186),
    (60, 64, 0.150),
    (65, 69, 0.077),
    (70, 75, 0.030),
];

/// Weekly hours of contracts by INPS class. INPS 2022: 214,913 of 894,299
/// workers (24.0%) at 40 hours or more, and 25-29 the most common class; the
/// other classes by assumption. Columns: lowest, highest, share.
pub const WEEKLY_HOURS_CLASSES: &[(i32, i32, f64)] = &[
    (4, 9, 0.09),
    (10, 14, 0.10),
    (15, 19, 0.09),
    (20, 24, 0.11),
    (25, 29, 0.25),
    (30, 34, 0.07),
    (35, 39, 0.05),
    (40, 54, 0.24),
];

/// Live-in contracts by type of work. INPS publishes no live-in figure; these
/// are assumptions (DOMINA's contract sample has the variable), chosen so that
/// live-in contracts stay within the 24% at 40 hours or more.
pub const LIVE_IN_CARERS: f64 = 0.35;
pub const LIVE_IN_HELPERS: f64 = 0.02;

/// CCNL levels by type of work (assumption): carers mostly CS, helpers mostly B.
pub const LEVELS_CARERS: &[(&str, f64)] = &[("CS", 0.55), ("BS", 0.25), ("DS", 0.12), ("AS", 0.08)];
pub const LEVELS_HELPERS: &[(&str, f64)] = &[("B", 0.70), ("A", 0.15), ("C", 0.10), ("BS", 0.05)];

/// CCNL minimum pay, 2024 table (art. 34; Assindatcolf): live-in €/month and
/// not live-in €/hour. Other years are indexed from it at 1.5% a year
/// (assumption standing in for the yearly ISTAT-based indexation).
pub const CCNL_MINIMA_2024: &[(&str, f64, f64)] = &[
    ("A", 729.25, 5.30),
    ("AS", 861.86, 6.24),
    ("B", 928.15, 6.62),
    ("BS", 994.44, 7.03),
    ("C", 1060.76, 7.42),
    ("CS", 1127.04, 7.83),
    ("D", 1325.92, 9.03),
    ("DS", 1392.21, 9.41),
];
pub const CCNL_YEARLY_INDEXATION: f64 = 0.015;

/// Contracts the observatory records as notified to INPS (assumption: the
/// records come from hiring notices and desks, so most are declared).
pub const DECLARED_CONTRACTS: f64 = 0.92;

/// Irregular domestic work: 48.8% in 2024 (DOMINA 7th report, ISTAT data);
/// used for the surveys, split into partly declared and undeclared by
/// assumption.
pub const SURVEY_UNDECLARED: f64 = 0.33;
pub const SURVEY_PARTLY_DECLARED: f64 = 0.158;

/// Cremona province, 1,716 colf + 1,712 badanti (DOMINA 2nd report, INPS
/// data, reference year ≈2019), against the national 2019 figure above.
pub const CREMONA_WORKERS_2019: f64 = 3_428.0;
/// Lombardy, 158,378 workers in 2024 (19.4% of Italy; INPS 2024).
pub const LOMBARDY_WORKERS_2024: f64 = 158_378.0;

/// Employer households per worker: 902k employers for 817k workers in 2024
/// (DOMINA 7th report; INPS 2024).
pub const EMPLOYERS_PER_WORKER: f64 = 902_000.0 / 817_403.0;

/// Probability that a worker active in one year is still active the next
/// (assumption; gives about 22% new entrants a year).
pub const YEARLY_RETENTION: f64 = 0.78;
