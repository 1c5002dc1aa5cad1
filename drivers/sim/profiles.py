"""Time-of-day profiles, physical models and random-event rates of the simulated city.

All profiles are indexed by the site's LOCAL hour (Site.timezone) and are piecewise constant per hour.

Movers along the streets (pedestrians, cyclists, vehicles), in presence-detector passes per lamp per hour:

    00 4    01 2    02 0.5  03 0.3  04 0.3  05 1    06 4    07 10   08 12   09 8    10 7    11 8
    12 10   13 9    14 8    15 8    16 10   17 13   18 14   19 12   20 9    21 7    22 6    23 5

i.e. a busy evening (17:00-20:00), nearly nothing from 02:00 to 05:00. A mover is a pedestrian (60 %,
1.3 m/s), a cyclist (25 %, 4.5 m/s) or a vehicle (15 %, 9 m/s); it starts at a random lamp of a street
(streets weighted by their lamp count), walks in a random direction along the street's `seq` order for a
geometric number of lamps (mean 12, never past the street's end, crossing cabinet boundaries), and fires the
presence detector of every lamp it passes; the time between two lamps is their distance / its speed
(distance from the lamps' coordinates, clamped to 5-100 m).

Vehicles per traffic detector per hour (times a per-detector weight of 0.3-1.5):

    00 60   01 30   02 15   03 10   04 15   05 40   06 150  07 450  08 600  09 400  10 320  11 350
    12 400  13 380  14 350  15 380  16 450  17 600  18 650  19 450  20 300  21 220  22 160  23 100

Traffic controllers' local time-of-day plan (LOCAL_PLANS): 00:00 plan 1 (night), 06:30 plan 2, 07:30 plan 3
(morning peak), 09:30 plan 2, 16:30 plan 4 (evening peak), 19:30 plan 2, 21:30 plan 1; one controller in four
runs flashing amber (plan 10) from 01:00 to 05:00. Cycle lengths per plan are in PLAN_CYCLES; each controller
has 2-4 stages whose split of the cycle is drawn once per controller and plan.

Parking target occupancy (fraction of bays) per hour, car parks / on-street zones, and mean stay:

    car park   : 0.15 at night, rising from 07:00 to 0.85-0.90 (10:00-17:00), 0.55 in the evening;
    on-street  : 0.60 at night (residents), 0.80-0.90 by day;
    stay       : 2.5 h (car park) / 1.5 h (on-street) for arrivals 07:00-18:59, 9 h overnight.

Lamps: power = rated W × (0.05 + 0.95 × level / 100) when lit, 0.5 W standby when off (level 0), 0 when
failed or without mains. Cabinet meter = lamps + 12 W controller + 3 % line losses (0 on mains failure).
Mains voltage 230 V ± 4 V (slow daily swing, lower in the evening) ± 1 V minute-to-minute.

Signs: measured luminance follows the sun (approximate solar elevation at the site): 250 cd/m² at night up to
9000 cd/m² in full daylight, × brightness / 100 when HR3 is 1-100; 0 while blank or without power.

Random faults (rates per device unless said otherwise; each lasts a uniform time in the range):

    lamp failure          2e-5 per burning hour     repaired after 12-72 h (only lit lamps fail)
    cabinet mains loss    1 per 120 days            2-45 min
    cabinet door open     1 per 30 days             10-60 min
    controller conflict   1 per 365 days            15-90 min
    signal lamp failure   1 per 60 days             4-48 h
    detector fault        1 per 90 days             1-5 days (one detector; its count freezes)
    controller door       1 per 60 days             10-40 min
    sign pixel failure    1 per 180 days            2-10 days
    sign over-temperature 1 per 120 days            30 min-3 h
    sign door             1 per 90 days             10-40 min
    parking sensor fault  1 per bay per 500 days    1-7 days (the bay reads free, DI 4096+i set)
"""

from __future__ import annotations

import math
import random
import time

PASSES_PER_LAMP_HOUR: tuple[float, ...] = (
    4, 2, 0.5, 0.3, 0.3, 1, 4, 10, 12, 8, 7, 8, 10, 9, 8, 8, 10, 13, 14, 12, 9, 7, 6, 5,
)  # fmt: skip
MOVERS: tuple[tuple[str, float, float], ...] = (
    ("pedestrian", 0.60, 1.3),
    ("cyclist", 0.25, 4.5),
    ("vehicle", 0.15, 9.0),
)
MEAN_WALK_LAMPS = 12.0
LAMP_SPACING_M = (5.0, 100.0)
DEFAULT_SPACING_M = 30.0

VEHICLES_PER_DETECTOR_HOUR: tuple[float, ...] = (
    60, 30, 15, 10, 15, 40, 150, 450, 600, 400, 320, 350, 400, 380, 350, 380, 450, 600, 650, 450, 300, 220, 160, 100,
)  # fmt: skip

LOCAL_PLANS: tuple[tuple[int, int], ...] = (
    (0, 1), (6 * 60 + 30, 2), (7 * 60 + 30, 3), (9 * 60 + 30, 2), (16 * 60 + 30, 4), (19 * 60 + 30, 2), (21 * 60 + 30, 1),
)  # fmt: skip
NIGHT_FLASH = (60, 300)  # minutes of the day when night-flashing controllers run plan 10
NIGHT_FLASH_SHARE = 0.25
PLAN_CYCLES: dict[int, int] = {1: 60, 2: 80, 3: 100, 4: 110, 5: 90, 6: 120, 7: 70, 8: 90}

CARPARK_OCCUPANCY: tuple[float, ...] = (
    0.15, 0.15, 0.15, 0.15, 0.15, 0.15, 0.2, 0.35, 0.6, 0.8, 0.85, 0.88, 0.9, 0.88, 0.87, 0.87, 0.85, 0.8, 0.7,
    0.6, 0.55, 0.45, 0.3, 0.2,
)  # fmt: skip
ONSTREET_OCCUPANCY: tuple[float, ...] = (
    0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.65, 0.75, 0.8, 0.85, 0.88, 0.9, 0.88, 0.85, 0.85, 0.85, 0.85, 0.85,
    0.8, 0.75, 0.7, 0.65, 0.6,
)  # fmt: skip

STANDBY_W = 0.5
DIM_FLOOR = 0.05
CABINET_BASE_W = 12.0
CABINET_LOSS = 0.03
MAINS_DV = 2300

LUMINANCE_NIGHT = 250.0
LUMINANCE_DAY = 9000.0

HOUR = 3600.0
DAY = 86400.0
LAMP_FAILURE_PER_HOUR = 2e-5
LAMP_REPAIR_S = (12 * HOUR, 72 * HOUR)
BAY_FAULT_PER_HOUR = 1 / (500 * 24)
BAY_REPAIR_S = (1 * DAY, 7 * DAY)

# (fault, mean days between, duration range in seconds) per device class
RANDOM_FAULTS: dict[str, tuple[tuple[str, float, tuple[float, float]], ...]] = {
    "cabinet": (("mains", 120, (120, 45 * 60)), ("door", 30, (600, 3600))),
    "controller": (
        ("conflict", 365, (15 * 60, 90 * 60)),
        ("signal_lamp", 60, (4 * HOUR, 48 * HOUR)),
        ("detector", 90, (1 * DAY, 5 * DAY)),
        ("door", 60, (600, 2400)),
    ),
    "sign": (("pixels", 180, (2 * DAY, 10 * DAY)), ("temperature", 120, (1800, 3 * HOUR)), ("door", 90, (600, 2400))),
    "parking": (),
}


def lamp_power(rated_w: float, level: int) -> float:
    """A luminaire's power (W) at `level` % (standby when off)."""
    if level <= 0:
        return STANDBY_W
    return rated_w * (DIM_FLOOR + (1.0 - DIM_FLOOR) * level / 100.0)


def cabinet_power(lamps_w: float) -> float:
    """The cabinet meter's power (W) for a lamp load: controller + line losses on top."""
    return lamps_w + CABINET_BASE_W + CABINET_LOSS * lamps_w


def local_plan(minute_of_day: int, night_flash: bool) -> int:
    """The plan of the local time-of-day table at that minute."""
    if night_flash and NIGHT_FLASH[0] <= minute_of_day < NIGHT_FLASH[1]:
        return 10
    plan = LOCAL_PLANS[0][1]
    for start, number in LOCAL_PLANS:
        if minute_of_day >= start:
            plan = number
    return plan


def occupancy_target(site_type: str, hour: int) -> float:
    """Target fraction of occupied bays at that local hour."""
    table = CARPARK_OCCUPANCY if site_type == "carpark" else ONSTREET_OCCUPANCY
    return table[hour % 24]


def mean_stay_s(site_type: str, hour: int) -> float:
    """Mean parking duration (s) of a car arriving at that local hour."""
    if 7 <= hour < 19:
        return (2.5 if site_type == "carpark" else 1.5) * HOUR
    return 9.0 * HOUR


def solar_elevation_deg(t: float, lat: float, lon: float) -> float:
    """Approximate solar elevation (degrees) at POSIX time `t` (declination + hour angle, no equation of time)."""
    day = time.gmtime(t).tm_yday
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + day) / 365.0)
    solar_hours = (t % DAY) / HOUR + lon / 15.0
    hour_angle = math.radians(15.0 * (solar_hours - 12.0))
    phi = math.radians(lat)
    sin_elev = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour_angle)
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_elev))))


def sign_luminance(t: float, lat: float, lon: float) -> float:
    """Automatic sign luminance (cd/m²) at time `t`: dim at night, bright in daylight."""
    fraction = min(1.0, max(0.0, (solar_elevation_deg(t, lat, lon) + 6.0) / 36.0))
    return LUMINANCE_NIGHT + (LUMINANCE_DAY - LUMINANCE_NIGHT) * fraction


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (normal approximation above a mean of 50)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def wiggle(x: float, phase: float) -> float:
    """Cheap deterministic noise in [-1, 1] for a number (e.g. a minute index) and a per-device phase."""
    return math.sin(x * 1.618034 + phase) * math.cos(x * 0.577215 + 2.0 * phase)
