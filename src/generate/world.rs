//! The territory a synthetic observatory covers: its municipalities and
//! districts, the yearly number of workers it must hold, and its desks.
//!
//! Owns the choice of territory by scale and the desks network. It must not
//! generate people or services.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use rand::Rng as _;

use super::calibration::{
    CREMONA_WORKERS_2019, FIRST_YEAR, INPS_WORKERS, LAST_YEAR, LOMBARDY_WORKERS_2024,
};
use super::random::{stream, Categorical};
use super::{GenerateError, GenerateOptions, Scale};

/// One municipality of the territory.
#[derive(Debug, Clone)]
pub struct Municipality {
    pub istat_code: String,
    pub name: String,
    pub district: usize,
    pub province: String,
    pub population: f64,
    pub population_80plus: f64,
}

/// What kind of desk, as coded in `desks.desk_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeskKind {
    FamilyDesk,
    RegistryOffice,
    EmploymentCentre,
    UnionOffice,
    ThirdSector,
}

impl DeskKind {
    pub fn code(self) -> &'static str {
        match self {
            DeskKind::FamilyDesk => "family_desk",
            DeskKind::RegistryOffice => "registry_office",
            DeskKind::EmploymentCentre => "employment_centre",
            DeskKind::UnionOffice => "union_office",
            DeskKind::ThirdSector => "third_sector",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Desk {
    pub kind: DeskKind,
    pub name: String,
    pub managing_body: String,
    pub municipality: usize,
    pub district: usize,
    pub opened_year: i32,
}

/// The territory of one generated observatory.
#[derive(Debug)]
pub struct World {
    pub scale: Scale,
    pub municipalities: Vec<Municipality>,
    pub districts: Vec<String>,
    pub desks: Vec<Desk>,
    /// The family desk of each district, by district index.
    pub family_desk: Vec<usize>,
    /// The registry office of each district's province, by district index.
    registry_desk: Vec<usize>,
    /// Where carers work: municipalities weighted by residents aged 80+.
    pub carer_places: Categorical,
    /// Where domestic helpers work: municipalities weighted by residents.
    pub helper_places: Categorical,
    /// Target number of active workers, by year from FIRST_YEAR.
    pub workers_per_year: Vec<f64>,
}

impl World {
    pub fn new(territories: &RecordBatch, options: GenerateOptions) -> Result<Self, GenerateError> {
        let text = |name: &str| -> Arc<StringArray> {
            let column = territories.column_by_name(name).expect("dictionary column");
            Arc::new(
                column
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("utf8")
                    .clone(),
            )
        };
        let number = |name: &str| -> Int64Array {
            let column = territories.column_by_name(name).expect("dictionary column");
            column
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("int64")
                .clone()
        };
        let (istat, names, district, province_code, province, region_code) = (
            text("istat_code"),
            text("municipality"),
            text("district"),
            text("province_code"),
            text("province"),
            text("region_code"),
        );
        let (population, population_80plus) = (number("population"), number("population_80plus"));
        let selected = |row: usize| match options.scale {
            Scale::Province => province_code.value(row) == "019",
            Scale::Region => region_code.value(row) == "03",
            Scale::National => true,
        };
        let mut district_index: BTreeMap<String, usize> = BTreeMap::new();
        let mut municipalities = Vec::new();
        for row in 0..territories.num_rows() {
            if !selected(row) || population.is_null(row) {
                continue;
            }
            let next = district_index.len();
            let district = *district_index
                .entry(district.value(row).to_string())
                .or_insert(next);
            municipalities.push(Municipality {
                istat_code: istat.value(row).to_string(),
                name: names.value(row).to_string(),
                district,
                province: province.value(row).to_string(),
                population: population.value(row) as f64,
                population_80plus: if population_80plus.is_null(row) {
                    population.value(row) as f64 * 0.078
                } else {
                    population_80plus.value(row) as f64
                },
            });
        }
        if municipalities.is_empty() {
            return Err(GenerateError::NoTerritory(options.scale.as_str()));
        }
        let mut districts = vec![String::new(); district_index.len()];
        for (name, index) in district_index {
            districts[index] = name;
        }
        let share_of_italy = match options.scale {
            Scale::Province => CREMONA_WORKERS_2019 / inps(2019),
            Scale::Region => LOMBARDY_WORKERS_2024 / inps(2024),
            Scale::National => 1.0,
        };
        let workers_per_year = (FIRST_YEAR..=LAST_YEAR)
            .map(|y| inps(y) * share_of_italy)
            .collect();
        let carer_places = Categorical::new(municipalities.iter().map(|m| m.population_80plus));
        let helper_places = Categorical::new(municipalities.iter().map(|m| m.population));
        let mut world = World {
            scale: options.scale,
            municipalities,
            districts,
            desks: Vec::new(),
            family_desk: Vec::new(),
            registry_desk: Vec::new(),
            carer_places,
            helper_places,
            workers_per_year,
        };
        world.open_desks(options.seed);
        Ok(world)
    }

    /// One family desk and one employment centre per district, in its largest
    /// municipality; a registry office, a union office and a third-sector desk
    /// per province, in the province's largest municipality.
    fn open_desks(&mut self, seed: u64) {
        let mut rng = stream(seed, "desks");
        let largest = |keep: &dyn Fn(&Municipality) -> bool| -> usize {
            let mut best = None::<usize>;
            for (i, m) in self.municipalities.iter().enumerate() {
                if keep(m) && best.is_none_or(|b| self.municipalities[b].population < m.population)
                {
                    best = Some(i);
                }
            }
            best.expect("every district and province has a municipality")
        };
        let mut desks = Vec::new();
        let mut family_desk = Vec::new();
        for (d, district) in self.districts.iter().enumerate() {
            let seat = largest(&|m| m.district == d);
            family_desk.push(desks.len());
            desks.push(Desk {
                kind: DeskKind::FamilyDesk,
                name: format!("Sportello assistenti familiari – ambito di {district}"),
                managing_body: format!("Ufficio di Piano dell'ambito di {district}"),
                municipality: seat,
                district: d,
                opened_year: if self.scale == Scale::Province {
                    2012
                } else {
                    rng.random_range(2008..=2016)
                },
            });
            desks.push(Desk {
                kind: DeskKind::EmploymentCentre,
                name: format!("Centro per l'impiego di {}", self.municipalities[seat].name),
                managing_body: format!("Provincia di {}", self.municipalities[seat].province),
                municipality: seat,
                district: d,
                opened_year: 2000,
            });
        }
        let mut provinces: Vec<&str> = self
            .municipalities
            .iter()
            .map(|m| m.province.as_str())
            .collect();
        provinces.sort_unstable();
        provinces.dedup();
        for province in provinces {
            let seat = largest(&|m| m.province == province);
            let district = self.municipalities[seat].district;
            for (kind, name, body) in [
                (
                    DeskKind::RegistryOffice,
                    "Registro pubblico degli assistenti familiari",
                    format!("Provincia di {province}"),
                ),
                (
                    DeskKind::UnionOffice,
                    "Sportello sindacale colf e badanti",
                    "CGIL CISL UIL".to_string(),
                ),
                (
                    DeskKind::ThirdSector,
                    "Sportello di accoglienza",
                    "Caritas diocesana".to_string(),
                ),
            ] {
                desks.push(Desk {
                    kind,
                    name: format!("{name} – {province}"),
                    managing_body: body,
                    municipality: seat,
                    district,
                    opened_year: rng.random_range(2008..=2016),
                });
            }
        }
        // Looked up once here: generators ask for it for every registered worker.
        self.registry_desk = family_desk
            .iter()
            .map(|&family| {
                let province = &self.municipalities[desks[family].municipality].province;
                desks
                    .iter()
                    .position(|d| {
                        d.kind == DeskKind::RegistryOffice
                            && &self.municipalities[d.municipality].province == province
                    })
                    .expect("every province has a registry office")
            })
            .collect();
        self.desks = desks;
        self.family_desk = family_desk;
    }

    /// Index of the registry office serving a district.
    pub fn registry_desk(&self, district: usize) -> usize {
        self.registry_desk[district]
    }

    pub fn desk_id(index: usize) -> String {
        format!("D{:05}", index + 1)
    }

    pub fn years() -> std::ops::RangeInclusive<i32> {
        FIRST_YEAR..=LAST_YEAR
    }

    pub fn desks_batch(&self) -> Result<RecordBatch, GenerateError> {
        use super::batch;
        let desks = &self.desks;
        batch(
            "desks",
            vec![
                // One column per dictionary column, in its order.
                Arc::new(StringArray::from_iter_values(
                    (0..desks.len()).map(Self::desk_id),
                )) as ArrayRef,
                Arc::new(StringArray::from_iter_values(
                    desks.iter().map(|d| d.name.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(desks.iter().map(|d| {
                    self.municipalities[d.municipality].istat_code.as_str()
                }))),
                Arc::new(StringArray::from_iter_values(
                    desks.iter().map(|d| self.districts[d.district].as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    desks.iter().map(|d| d.kind.code()),
                )),
                Arc::new(StringArray::from_iter_values(
                    desks.iter().map(|d| d.managing_body.as_str()),
                )),
                Arc::new(Int32Array::from_iter_values(
                    desks.iter().map(|d| d.opened_year),
                )),
            ],
        )
    }
}

fn inps(year: i32) -> f64 {
    INPS_WORKERS
        .iter()
        .find(|(y, _)| *y == year)
        .map(|(_, n)| *n)
        .expect("year in INPS series")
}
