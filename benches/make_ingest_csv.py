#!/usr/bin/env python3
"""Writes a large, valid `workers` export for the ingest benchmark.

    benches/make_ingest_csv.py ROWS OUT.csv [--seed N] [--istat-codes FILE]

Every row passes every rule of `datasets/workers.toml`: a unique, well-formed
16-character codice fiscale with its check character (the layout that
`osservatorio ingest` checks: six letters, year, month letter, day, place
code, check letter), an ISO `registered_on` between 2015 and 2025, codes
spelled as in the dictionary, numbers within their ranges, and municipalities
of the province of Cremona. `year` is derived by ingest and `desk_id` (nullable)
is left out, as in an export from a hiring office.

The output depends only on ROWS, --seed and the ISTAT codes: the same
arguments give the same bytes. --istat-codes reads one code per line (a
`osservatorio sql ... --format csv` output with its `istat_code` header is
fine); without it the 113 municipalities of the province of Cremona are used.
Only the standard library is needed.
"""
import argparse
import datetime
import random
import sys

# The check character (as in tests/fixtures/ingest/make_fixtures.py): the
# characters in odd positions (1-based) map through ODD, those in even
# positions count their value; the sum modulo 26 is the letter.
ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
VALUE = {c: i for i, c in enumerate("0123456789")} | {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
ODD_OF = {c: ODD[v] for c, v in VALUE.items()}
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MONTHS = "ABCDEHLMPRST"

# Distinct codici fiscali by construction: the first six letters are the row
# number through a bijection of 0..26^6 (multiplication by a number prime to 26,
# plus an offset from the seed), so they look random and never repeat.
PREFIXES = 26 ** 6
MULTIPLIER = 15_485_863  # prime, not 2 nor 13: invertible modulo 26^6

# The 113 municipalities of the province of Cremona (019001-019116 without
# 019008, 019042, 019071), as in the demo warehouse's `territories`.
CREMONA = [f"019{i:03d}" for i in range(1, 117) if i not in (8, 42, 71)]

HEADER = [
    "worker_id", "registered_on", "in_registry", "istat_code", "sex", "birth_year",
    "citizenship", "citizenship_group", "origin_area", "job_type", "italian_level",
    "training_hours", "certified", "experience_years", "live_in_available",
    "hours_available", "skills", "status",
]

# Citizenship, group, origin area, place code of the codice fiscale (Italians:
# a municipality's cadastral code; foreigners: the country's Z code), weight.
CITIZENSHIPS = [
    ("IT", "IT", "italy", None, 310),
    ("RO", "EU", "eastern_europe", "Z129", 150),
    ("UA", "NON_EU", "eastern_europe", "Z138", 110),
    ("PH", "NON_EU", "east_asia", "Z216", 75),
    ("MD", "NON_EU", "eastern_europe", "Z140", 42),
    ("PE", "NON_EU", "south_america", "Z611", 40),
    ("AL", "NON_EU", "eastern_europe", "Z100", 24),
    ("MA", "NON_EU", "north_africa", "Z330", 23),
    ("LK", "NON_EU", "middle_east_asia", "Z209", 22),
    ("EC", "NON_EU", "south_america", "Z605", 20),
    ("GE", "NON_EU", "eastern_europe", "Z254", 19),
    ("PL", "EU", "eastern_europe", "Z127", 17),
    ("BG", "EU", "eastern_europe", "Z104", 16),
    ("IN", "NON_EU", "middle_east_asia", "Z222", 15),
    ("SV", "NON_EU", "central_north_america", "Z506", 13),
    ("CN", "NON_EU", "east_asia", "Z210", 11),
    ("SN", "NON_EU", "other_africa", "Z343", 10),
    ("BR", "NON_EU", "south_america", "Z602", 9),
    ("FR", "EU", "western_europe", "Z110", 5),
    ("AU", "NON_EU", "oceania", "Z700", 2),
]
ITALIAN_PLACES = ["D150", "D142", "B869", "F205", "H501", "F839", "L219", "G337"]
LEVELS_FOREIGN = ["A1", "A2", "B1", "B2", "C1", "C2", ""]
SKILLS = ["personal_care", "mobility", "cooking", "cleaning", "dementia_care", "night_care", "driving", "childcare"]
STATUSES = ["available"] * 3 + ["employed"] * 5 + ["suspended"] + ["left"] * 2


def check_character(first15):
    total = 0
    for i, c in enumerate(first15):
        total += ODD_OF[c] if i % 2 == 0 else VALUE[c]
    return LETTERS[total % 26]


def read_codes(path):
    codes = []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            code = line.strip().strip('"')
            if len(code) == 6 and code.isdigit():
                codes.append(code)
    if not codes:
        sys.exit(f"{path}: no 6-digit ISTAT code found")
    return codes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=int, help="number of data rows")
    parser.add_argument("out", help="output CSV file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--istat-codes", metavar="FILE", help="one ISTAT municipality code per line")
    args = parser.parse_args()
    if not 1 <= args.rows <= PREFIXES:
        parser.error(f"ROWS must be between 1 and {PREFIXES}")
    codes = read_codes(args.istat_codes) if args.istat_codes else CREMONA

    rng = random.Random(args.seed)
    r = rng.random
    randrange = rng.randrange
    offset = randrange(PREFIXES)

    start = datetime.date(2015, 1, 1).toordinal()
    days = [datetime.date.fromordinal(d).isoformat() for d in range(start, datetime.date(2025, 12, 31).toordinal() + 1)]
    n_days = len(days)
    n_codes = len(codes)
    citizenship_table = [c for c in CITIZENSHIPS for _ in range(c[4])]
    n_citizenship = len(citizenship_table)
    # Sums of the check character for every two-character pair at positions
    # (even, odd) 0-based, to keep the per-row work small.
    pair = {a + b: ODD_OF[a] + VALUE[b] for a in VALUE for b in VALUE}

    out = open(args.out, "w", encoding="utf-8", newline="")
    out.write(",".join(HEADER) + "\n")
    buffer = []
    for i in range(args.rows):
        n = (i * MULTIPLIER + offset) % PREFIXES
        prefix = ""
        for _ in range(6):
            n, k = divmod(n, 26)
            prefix += LETTERS[k]

        female = r() < 0.88
        birth_year = 1945 + int(r() * 58)  # 1945..2002
        citizenship, group, origin, place, _ = citizenship_table[int(r() * n_citizenship)]
        if place is None:
            place = ITALIAN_PLACES[int(r() * len(ITALIAN_PLACES))]
        day = 1 + int(r() * 28) + (40 if female else 0)
        first15 = f"{prefix}{birth_year % 100:02d}{MONTHS[int(r() * 12)]}{day:02d}{place}"
        total = (pair[first15[0:2]] + pair[first15[2:4]] + pair[first15[4:6]] + pair[first15[6:8]]
                 + pair[first15[8:10]] + pair[first15[10:12]] + pair[first15[12:14]] + ODD_OF[first15[14]])
        worker_id = first15 + LETTERS[total % 26]
        if i == 0:
            assert worker_id == first15 + check_character(first15), worker_id

        carer = r() < 0.7
        live_in = carer and r() < 0.45
        hours = 25 + int(r() * 30) if live_in else 4 + int(r() * 37)  # 25..54 or 4..40
        if group == "IT":
            level = "native"
        else:
            level = LEVELS_FOREIGN[int(r() * 7)]
        roll = r()
        if roll < 0.15:
            skills = ""
        else:
            first = int(r() * 8)
            skills = SKILLS[first]
            if roll > 0.55:
                second = (first + 1 + int(r() * 7)) % 8
                skills += ";" + SKILLS[second]
        buffer.append(
            f"{worker_id},{days[int(r() * n_days)]},{'true' if r() < 0.4 else 'false'},"
            f"{codes[int(r() * n_codes)]},{'F' if female else 'M'},{birth_year},"
            f"{citizenship},{group},{origin},{'carer' if carer else 'domestic_helper'},{level},"
            f"{int(r() * 300) if r() < 0.6 else 0},{'true' if r() < 0.2 else 'false'},"
            f"{int(r() * 25)},{'true' if live_in else 'false'},{hours},{skills},"
            f"{STATUSES[int(r() * 11)]}\n"
        )
        if len(buffer) >= 50_000:
            out.write("".join(buffer))
            buffer.clear()
    out.write("".join(buffer))
    out.close()


if __name__ == "__main__":
    main()
