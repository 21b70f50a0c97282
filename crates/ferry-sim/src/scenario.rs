//! Simulated devices. Each device is stateful: a vehicle drives a continuous route (position
//! follows speed and heading), its odometer only grows, its battery drains while driving and
//! charges while parked; readings of sensors drift instead of jumping.

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::json;

/// A kind of simulated device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Tesla,
    TempHum,
    SmartHome,
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Scenario, String> {
        match s {
            "tesla" => Ok(Scenario::Tesla),
            "temp_hum" => Ok(Scenario::TempHum),
            "smart_home" => Ok(Scenario::SmartHome),
            other => Err(format!(
                "unknown scenario {other:?} (tesla, temp_hum, smart_home)"
            )),
        }
    }
}

/// One device's state.
pub enum Device {
    Vehicle(Vehicle),
    TempHum {
        temp: f64,
        hum: f64,
    },
    Home {
        temp: f64,
        power_w: f64,
        doors_open: u8,
        lights_on: u8,
    },
}

impl Device {
    pub fn new(s: Scenario, index: usize, rng: &mut StdRng) -> Device {
        match s {
            Scenario::Tesla => Device::Vehicle(Vehicle::new(index, rng)),
            Scenario::TempHum => Device::TempHum {
                temp: rng.random_range(18.0..26.0),
                hum: rng.random_range(35.0..65.0),
            },
            Scenario::SmartHome => Device::Home {
                temp: rng.random_range(19.0..23.0),
                power_w: rng.random_range(200.0..800.0),
                doors_open: 0,
                lights_on: rng.random_range(0..4),
            },
        }
    }

    /// Advances the state by `dt_s` seconds and returns the JSON payload for `now_ms`.
    pub fn tick(&mut self, dt_s: f64, now_ms: i64, rng: &mut StdRng) -> serde_json::Value {
        match self {
            Device::Vehicle(v) => {
                v.step(dt_s, now_ms, rng);
                v.json()
            }
            Device::TempHum { temp, hum } => {
                *temp = (*temp + rng.random_range(-0.2..0.2)).clamp(-20.0, 50.0);
                *hum = (*hum + rng.random_range(-0.5..0.5)).clamp(5.0, 95.0);
                json!({"temp": round1(*temp), "hum": round1(*hum)})
            }
            Device::Home {
                temp,
                power_w,
                doors_open,
                lights_on,
            } => {
                *temp = (*temp + rng.random_range(-0.1..0.1)).clamp(10.0, 30.0);
                *power_w = (*power_w + rng.random_range(-50.0..50.0)).clamp(50.0, 5000.0);
                if rng.random_bool(0.05) {
                    *doors_open = (*doors_open + 1) % 3;
                }
                if rng.random_bool(0.1) {
                    *lights_on = (*lights_on + 1) % 6;
                }
                json!({"temperature": round1(*temp), "power_w": power_w.round(), "doors_open": *doors_open,
                       "lights_on": *lights_on, "timestamp": now_ms})
            }
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A TeslaMate-style vehicle.
#[derive(Debug, Clone)]
pub struct Vehicle {
    pub vin: String,
    pub car_id: usize,
    pub display_name: String,
    pub model: &'static str,
    /// km/h
    pub speed: f64,
    /// km
    pub odometer: f64,
    /// battery %
    pub soc: f64,
    /// m
    pub elevation: f64,
    /// degrees, 0 = north
    pub heading: f64,
    pub lat: f64,
    pub lon: f64,
    pub power: f64,
    pub shift_state: &'static str,
    /// seconds left parked/charging before driving again
    parked_for: f64,
    pub timestamp: i64,
}

const MODELS: [&str; 4] = ["S", "3", "X", "Y"];
const NAMES: [&str; 8] = [
    "Roslyn", "Ada", "Grace", "Linus", "Ken", "Barbara", "Alan", "Edsger",
];
/// Usable battery, kWh; consumption, kWh per km.
const BATTERY_KWH: f64 = 75.0;
const KWH_PER_KM: f64 = 0.16;
const KM_PER_PERCENT: f64 = BATTERY_KWH / 100.0 / KWH_PER_KM;

impl Vehicle {
    pub fn new(index: usize, rng: &mut StdRng) -> Vehicle {
        let letters: String = (0..9)
            .map(|_| (b'A' + rng.random_range(0..26)) as char)
            .collect();
        Vehicle {
            vin: format!("{letters}{index:08}"),
            car_id: index,
            display_name: format!("{}'s Tesla", NAMES[index % NAMES.len()]),
            model: MODELS[index % MODELS.len()],
            speed: 0.0,
            odometer: rng.random_range(1_000.0..90_000.0),
            soc: rng.random_range(40.0..95.0),
            elevation: rng.random_range(0.0..800.0),
            heading: rng.random_range(0.0..360.0),
            lat: 52.52 + rng.random_range(-0.2..0.2),
            lon: 13.40 + rng.random_range(-0.2..0.2),
            power: 0.0,
            shift_state: "P",
            parked_for: rng.random_range(0.0..5.0),
            timestamp: 0,
        }
    }

    /// Physics of one step: speed changes smoothly, position moves along the heading by
    /// exactly the distance driven, the odometer grows by that distance, the battery drains
    /// by it (or charges while parked).
    pub fn step(&mut self, dt_s: f64, now_ms: i64, rng: &mut StdRng) {
        self.timestamp = now_ms;
        if self.soc < 8.0 && self.parked_for <= 0.0 {
            // Low battery: stop and charge for a while.
            self.parked_for = 60.0;
        }
        let parking = self.parked_for > 0.0;
        // Speed changes smoothly: at most 5 km/h per second up and 8 down.
        let target: f64 = if parking {
            0.0
        } else {
            rng.random_range(20.0..130.0)
        };
        let accel = (target - self.speed).clamp(-8.0 * dt_s, 5.0 * dt_s);
        self.speed = (self.speed + accel).clamp(0.0, 200.0);
        if self.speed <= 0.0 && parking {
            self.shift_state = "P";
            self.parked_for = (self.parked_for - dt_s).max(0.0);
            // Charging at about 11 kW while parked.
            self.power = if self.soc < 100.0 { -11.0 } else { 0.0 };
            self.soc = (self.soc + 11.0 * dt_s / 3600.0 / BATTERY_KWH * 100.0).min(100.0);
            return;
        }
        self.shift_state = "D";
        self.heading =
            (self.heading + rng.random_range(-10.0..10.0) * dt_s.min(1.0)).rem_euclid(360.0);
        let km = self.speed * dt_s / 3600.0;
        self.odometer += km;
        self.soc = (self.soc - km / KM_PER_PERCENT).max(0.0);
        self.elevation = (self.elevation + rng.random_range(-2.0..2.0)).max(-50.0);
        let rad = self.heading.to_radians();
        self.lat += km * rad.cos() / 111.32;
        self.lon += km * rad.sin() / (111.32 * self.lat.to_radians().cos().max(0.01));
        self.power = (self.speed * 0.2 + rng.random_range(-3.0..3.0)).round();
        if !parking && rng.random_bool((dt_s / 600.0).min(1.0)) {
            self.parked_for = rng.random_range(10.0..120.0);
        }
    }

    pub fn range_km(&self) -> f64 {
        self.soc * KM_PER_PERCENT
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "vin": self.vin,
            "car_id": self.car_id,
            "display_name": self.display_name,
            "model": self.model,
            "speed": self.speed.round() as i64,
            "odometer": (self.odometer * 10.0).round() / 10.0,
            "soc": self.soc.round() as i64,
            "elevation": self.elevation.round() as i64,
            "heading": self.heading.round() as i64 % 360,
            "accuracy": 5,
            "power": self.power as i64,
            "shift_state": self.shift_state,
            "range": self.range_km().round() as i64,
            "est_battery_range": (self.range_km() * 0.9).round() as i64,
            "gps_as_of": self.timestamp,
            "location": {"latitude": format!("{:.6}", self.lat), "longitude": format!("{:.6}", self.lon)},
            "timestamp": self.timestamp,
        })
    }
}
