#!/usr/bin/env python3
"""Generate config/dijon/, the city-scale demonstration site: a deterministic synthetic inventory of Dijon.

What it builds (all from one seeded random.Random, nothing depends on the clock or the machine):

- 12 districts around the centre (47.3220 N, 5.0415 E) over about 8 km x 6 km; each point belongs to the
  district of the nearest district seed (a Voronoi partition);
- streets: a grid per district (its own orientation and block size, slightly wavy lines, some breaks),
  10 radial avenues from the old town to the edges and an inner ring of boulevards; streets.geojson;
- 34,000 lamps exactly, every 25-35 m along the streets (lying on the street line), numbered along their
  street by `seq`; power by street class (LED 20-110 W) with the high-pressure sodium lamp each replaced
  (70/100/150/250 W, always more than the LED);
- 340 cabinets: per district, streets are chained by proximity and cut into runs of about 100 lamps (never
  more than 128), so each cabinet serves a contiguous run of one or a few streets and long avenues pass from
  cabinet to cabinet;
- 113 traffic controllers at crossings of main streets; 40 message signs on the radial entries, facing the
  inbound traffic; 10 parking sites (car parks and on-street zones) with 3,000 bay sensors;
- endpoints on 127.0.0.1 (cabinets from port 20001, controllers 20501, signs 20701, parking 20801, unit 1).

Usage (from the repository root):  .venv/bin/python tools/gen_dijon.py [--out config/dijon] [--seed 21000]
It then loads the result with scada.site.loader (skip with --no-check).
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LAT0, LON0 = 47.3220, 5.0415
HALF_W, HALF_H = 4000.0, 3000.0  # metres east-west and north-south from the centre
SEED = 21000
N_LAMPS = 34_000
N_CABINETS = 340
N_CONTROLLERS = 113
MAX_PER_CABINET = 128
PORT_CABINET, PORT_CONTROLLER, PORT_SIGN, PORT_PARKING = 20001, 20501, 20701, 20801

# Metres per degree at the centre latitude (equirectangular projection: exact enough over 8 km, and linear).
M_LAT = 111_132.92 - 559.82 * math.cos(2 * math.radians(LAT0)) + 1.175 * math.cos(4 * math.radians(LAT0))
M_LON = 111_412.84 * math.cos(math.radians(LAT0)) - 93.5 * math.cos(3 * math.radians(LAT0))

Point = tuple[float, float]  # local metres (x east, y north)

# id, name, seed x, seed y, grid angle (deg), block length, block width, waviness (m)
DISTRICTS = [
    ("centre-ville", "Centre-Ville", 0, 0, 8, 62, 74, 9),
    ("maladiere", "Maladière", 1100, 1150, 20, 74, 96, 5),
    ("faubourg-raines", "Faubourg Raines", -1250, -350, -12, 74, 92, 5),
    ("victor-hugo", "Victor Hugo", -250, 1600, 2, 76, 96, 5),
    ("montchapet", "Montchapet", -1900, 1500, 28, 82, 104, 6),
    ("toison-dor", "Toison d'Or", 1500, 2500, -15, 92, 118, 4),
    ("gresilles", "Grésilles", 2600, 1100, 35, 86, 110, 4),
    ("universite", "Université", 2700, -1100, -20, 92, 120, 4),
    ("chevreul-parc", "Chevreul-Parc", 1100, -1500, 10, 82, 104, 5),
    ("bourroches-port-du-canal", "Bourroches-Port du Canal", -1100, -2000, -30, 86, 110, 5),
    ("fontaine-douche", "Fontaine d'Ouche", -3000, -700, 15, 90, 114, 6),
    ("mirande", "Mirande", 3300, 200, 5, 96, 124, 4),
]

# name, road number, bearing from the centre (deg)
RADIALS = [
    ("Route de Langres", "D974", 352),
    ("Avenue du Drapeau", "D903", 22),
    ("Route de Gray", "D70", 55),
    ("Avenue de Stalingrad", "D107", 88),
    ("Rue de Mirande", "D996", 118),
    ("Route d'Auxonne", "D905", 145),
    ("Avenue Jean Jaurès", "D974", 190),
    ("Route de Chenôve", "D122", 215),
    ("Route de Plombières", "D10", 272),
    ("Avenue Victor Hugo", "D971", 318),
]
RING = [  # inner boulevards, counter-clockwise from the east
    "Boulevard Clemenceau",
    "Boulevard de la Trémouille",
    "Boulevard Thiers",
    "Boulevard de Brosses",
    "Boulevard de Sévigné",
    "Boulevard Carnot",
    "Boulevard Voltaire",
]
PEOPLE = """Jules Ferry|Gambetta|Pasteur|Chabot-Charny|Devosge|Jeannin|Buffon|Rameau|Bossuet|Crébillon|Piron|
François Rude|Henry Darcy|Lazare Carnot|Monge|Vauban|Mably|Daubenton|Courtépée|Hugues Sambin|Févret|Condorcet|
Montesquieu|Diderot|Lamartine|Alfred de Musset|Hector Berlioz|Claude Debussy|Maurice Ravel|Lavoisier|Ampère|Arago|
Joseph Fourier|Nicéphore Niépce|Gustave Eiffel|Henri Vincenot|Colette|Émile Zola|Proudhon|Jean Moulin|Pierre Curie|
Marie Curie|Anatole France|Alfred de Vigny|Paul Cabet|Henri Baudot|du Docteur Chaussier|de l'Amiral Roussin|
du Général Delaborde|du Maréchal Leclerc|Charles Dumont|Jean-Baptiste Baudin|Guillaume Tell|Mozart|Chopin|Gounod|
Georges Bizet|Massenet|Saint-Saëns|Gabriel Fauré|Rabelais|Molière|Racine|Corneille|Jean de La Fontaine|Boileau|
Blaise Pascal|Descartes|Cuvier|Lamarck|Réaumur|Parmentier|Jacquard|Montgolfier|Denis Papin|Édouard Branly|
Claude Bernard|Bichat|Broca|Laennec|Émile Roux|Calmette|Charcot|Camille Flammarion|Jules Verne|Balzac|Stendhal|
Flaubert|Maupassant|Baudelaire|Verlaine|Rimbaud|Mallarmé|Apollinaire|Charles Péguy|Paul Claudel|Paul Éluard|
Louis Aragon|Jacques Prévert|Saint-Exupéry|Albert Camus|André Malraux|Jean Mermoz|Guynemer|Louis Blériot|
Clément Ader|des Frères Lumière|Daguerre|Auguste Renoir|Claude Monet|Camille Corot|Gustave Courbet|Delacroix|
Ingres|Auguste Rodin|Bartholdi|François Pompon|Greuze|Sully|Colbert|Turgot|Mirabeau|Danton|Lafayette|Kléber|
Hoche|Marceau|Desaix|Davout|Junot|Lannes|Jean-Jacques Rousseau|Sadi Carnot|Édouard Herriot|Félix Kir|
Gaston Gérard|Robert Poujade|Alexis Millardet|Jean-Baptiste Lallemand|Philippe le Bon|Jean sans Peur|
Charles le Téméraire|Philippe le Hardi|Marguerite de Flandre|Claus Sluter|Bénigne Frémyot|Jeanne de Chantal|
Saint-Bernard|Jean-Philippe Rameau|Pierre Palliot|Edme Verniquet|Jacques Cellerier|Louis Pasteur|
Antoine Magnin|Charles Brifaut|Jules Mercier|Paul Bert|Louis Blanc|Victor Schœlcher|Ledru-Rollin|Garibaldi|
Jean Bouhey|Pierre Larousse|Sully Prudhomme|Gustave Nadaud|Jean Giono|Marcel Pagnol|Georges Brassens|
Olympe de Gouges|Louise Michel|George Sand|Simone Veil|Lucie Aubrac|Germaine Tillion|Joséphine Baker|
Édith Piaf|Marguerite Yourcenar|Simone de Beauvoir|Irène Joliot-Curie|Frédéric Joliot-Curie|Paul Langevin|
Henri Poincaré|Évariste Galois|Sophie Germain|Pierre-Simon Laplace|Joseph-Louis Lagrange|Augustin Fresnel|
Léon Foucault|Hippolyte Fontaine|Jean Bart|Surcouf|Bougainville|La Pérouse|Dumont d'Urville|
Jacques Cartier|Champlain|Vercingétorix|Eugène Spuller|Jean Macé|Ferdinand Buisson|
Jules Michelet|Edgar Quinet|Ernest Renan|Hippolyte Taine|Auguste Comte|Alexis de Tocqueville""".replace("\n", "").split(
    "|"
)
PLACES = """des Tilleuls|des Acacias|des Lilas|des Peupliers|des Marronniers|des Érables|des Platanes|des Saules|
des Vignes|des Vendanges|des Coteaux|du Clos Morlot|des Jardins|des Prés|des Champs|du Moulin|de la Fontaine|
du Lavoir|de l'Arquebuse|du Suzon|de l'Ouche|du Canal|de la Charme|de Gevrey|de Nuits|de Beaune|de Chambertin|
de Fixin|de Marsannay|de Plombières|de Talant|de Longvic|de Quetigny|de Chevigny|de Saint-Apollinaire|d'Ahuy|
de Fontaine|de Daix|de Hauteville|de Messigny|de Corcelles|de Pouilly|de Mâcon|d'Autun|d'Auxerre|de Semur|
de Montbard|de Châtillon|de Vergy|de Vougeot|de Meursault|de Pommard|de Volnay|de Santenay|de Mercurey|
de Chablis|de Tonnerre|de Sens|d'Avallon|de Saulieu|de Nevers|de Besançon|de Dole|d'Is-sur-Tille|de Mirebeau|
de Genlis|de Seurre|de Cîteaux|de Clairvaux|de Cluny|de Vézelay|de Fontenay|des Cerisiers|des Noyers|
des Pommiers|des Roses|des Glycines|des Bleuets|des Coquelicots|des Violettes|des Pervenches|du Petit Bois|
de la Colombière|de la Combe|des Carrières|des Tanneries|des Forges|de la Verrerie|des Moulins|du Bief|
des Lavandières|de la Source|des Grands Crus|du Cellier|de la Cuverie|du Pressoir|des Cassissiers|
de la Moutarde|du Pain d'Épices|de l'Hôpital|du Lycée|de la Gare|de l'Église|du Stade|du Parc|des Écoles|
des Rosiers|des Charmilles|des Bruyères|des Genêts|des Ajoncs|des Fougères|des Mésanges|des Hirondelles|
des Alouettes|des Fauvettes|des Pinsons|des Rossignols|des Martinets|des Ormes|des Frênes|des Chênes|
des Bouleaux|des Sorbiers|des Aubépines|des Églantiers|des Sureaux|des Noisetiers|des Vergers|des Potagers|
des Chenevières|des Verchères|des Perrières|des Poussots|des Grands Champs|des Petites Roches|des Combes|
du Mont Afrique|du Val Suzon|de la Côte|des Hautes Côtes|du Château|de la Tour|du Castel|des Remparts|
des Cordeliers|des Jacobins|des Carmes|des Ursulines|des Bénédictins|des Chartreux|de la Chartreuse|
du Port|des Écluses|des Péniches|des Mariniers|du Halage|des Bateliers|de la Prairie|des Marais|des Saussaies|
des Aulnes|des Trembles|des Merisiers|des Mirabelliers|des Groseilliers|du Verger|du Tertre|de la Butte""".replace(
    "\n", ""
).split("|")

# (LED rated W, legacy sodium W) choices per street class; the legacy lamp is always the more powerful
POWER = {
    "major": [(75, 150), (90, 250), (100, 250), (110, 250)],
    "collector": [(45, 100), (55, 150), (60, 150), (70, 150)],
    "residential": [(20, 70), (25, 70), (30, 70), (35, 100), (40, 100)],
}
# name, type, x, y (metres from the centre), bay sensors
PARKING = [
    ("Parking Darcy", "carpark", -560, 60, 380),
    ("Parking Dauphine", "carpark", -90, 160, 290),
    ("Parking Grangier", "carpark", -260, 260, 450),
    ("Parking Sainte-Anne", "carpark", 60, -360, 300),
    ("Parking Tivoli", "carpark", -160, -430, 260),
    ("Parking Clemenceau", "carpark", 620, 720, 520),
    ("Parking Trémouille", "carpark", 260, 470, 230),
    ("Parking Monge", "carpark", -370, -260, 180),
    ("Zone Wilson", "onstreet", 210, -660, 210),
    ("Zone République", "onstreet", 330, 320, 180),
]


@dataclass
class StreetLine:
    """A street being generated: class, district, metre polyline, then lamps."""

    cls: str
    district: str
    pts: list[Point]
    name: str = ""
    road: str = ""
    id: str = ""
    power: tuple[int, int] = (0, 0)
    lamp_at: list[float] = field(default_factory=list)  # distances along the line


@dataclass
class LampSpot:
    """A lamp being generated."""

    street: StreetLine
    seq: int
    xy: Point
    district: str = ""


# -- geometry ---------------------------------------------------------------------------------------------------


def to_lonlat(p: Point) -> tuple[float, float]:
    """Local metres to (lon, lat) rounded to 6 decimals."""
    return round(LON0 + p[0] / M_LON, 6), round(LAT0 + p[1] / M_LAT, 6)


def snap(p: Point) -> Point:
    """A point moved to where its rounded (lon, lat) lies, so later maths works on the written geometry."""
    lon, lat = to_lonlat(p)
    return (lon - LON0) * M_LON, (lat - LAT0) * M_LAT


def length(pts: list[Point]) -> float:
    """Length of a polyline."""
    return sum(math.dist(a, b) for a, b in itertools.pairwise(pts))


def at(pts: list[Point], d: float) -> tuple[Point, Point]:
    """Point at distance d along a polyline, and the unit direction there."""
    for a, b in itertools.pairwise(pts):
        seg = math.dist(a, b)
        if d <= seg or b is pts[-1]:
            f = min(max(d / seg, 0.0), 1.0) if seg else 0.0
            return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f), ((b[0] - a[0]) / seg, (b[1] - a[1]) / seg)
        d -= seg
    raise ValueError("empty polyline")


def cut(pts: list[Point], d: float) -> list[Point]:
    """The polyline truncated at distance d."""
    out = [pts[0]]
    for a, b in itertools.pairwise(pts):
        seg = math.dist(a, b)
        if d <= seg:
            f = d / seg
            out.append((a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f))
            return out
        out.append(b)
        d -= seg
    return out


def district_of(p: Point) -> str:
    """The district whose seed is nearest."""
    return min(DISTRICTS, key=lambda d: (p[0] - d[2]) ** 2 + (p[1] - d[3]) ** 2)[0]


def inside(p: Point, margin: float = 0.0) -> bool:
    """True inside the generated area."""
    return abs(p[0]) <= HALF_W - margin and abs(p[1]) <= HALF_H - margin


def wavy(a: Point, b: Point, rng: random.Random, amplitude: float, step: float = 70.0) -> list[Point]:
    """A slightly wavy polyline from a to b (vertices every ~step m, smooth lateral offset)."""
    total = math.dist(a, b)
    n = max(1, math.ceil(total / step))
    ux, uy = (b[0] - a[0]) / total, (b[1] - a[1]) / total
    wavelength, phase = rng.uniform(400, 1100), rng.uniform(0, 2 * math.pi)
    pts = []
    for k in range(n + 1):
        t = total * k / n
        off = amplitude * math.sin(2 * math.pi * t / wavelength + phase) * (1 if 0 < k < n else 0.3)
        pts.append((a[0] + ux * t - uy * off, a[1] + uy * t + ux * off))
    return pts


# -- streets ----------------------------------------------------------------------------------------------------


def clip_to_cell(district: tuple, origin: Point, u: Point) -> tuple[float, float] | None:
    """Parameter interval of the line origin + t*u inside the district's Voronoi cell and the area."""
    lo, hi = -1e9, 1e9
    planes = []
    sx, sy = district[2], district[3]
    for other in DISTRICTS:
        if other is district:
            continue
        w = (other[2] - sx, other[3] - sy)
        m = ((other[2] + sx) / 2, (other[3] + sy) / 2)
        planes.append((w, w[0] * m[0] + w[1] * m[1]))
    planes += [((1, 0), HALF_W - 30), ((-1, 0), HALF_W - 30), ((0, 1), HALF_H - 30), ((0, -1), HALF_H - 30)]
    for w, c in planes:  # w . p <= c
        wu = w[0] * u[0] + w[1] * u[1]
        rest = c - (w[0] * origin[0] + w[1] * origin[1])
        if abs(wu) < 1e-12:
            if rest < 0:
                return None
        elif wu > 0:
            hi = min(hi, rest / wu)
        else:
            lo = max(lo, rest / wu)
    return (lo, hi) if hi - lo > 0 else None


def grid_streets(rng: random.Random) -> list[StreetLine]:
    """Each district's grid: two families of wavy parallel lines, cut into streets with a few breaks."""
    streets = []
    for district in DISTRICTS:
        did, _, sx, sy, angle, block_a, block_b, wave = district
        theta = math.radians(angle)
        for family, spacing in ((0, block_b), (1, block_a)):
            u = (math.cos(theta), math.sin(theta)) if family == 0 else (-math.sin(theta), math.cos(theta))
            n = (-u[1], u[0])
            phase = rng.uniform(0, spacing)
            for k in range(-80, 81):
                off = k * spacing + phase
                origin = (sx + n[0] * off, sy + n[1] * off)
                span = clip_to_cell(district, origin, u)
                if span is None or span[1] - span[0] < 150:
                    continue
                cls = "collector" if k % 4 == 0 else "residential"
                t = span[0] + rng.uniform(0, 20)
                end = span[1] - rng.uniform(0, 20)
                while end - t > 120:
                    piece = end - t if end - t < 1500 else rng.uniform(450, 1200)
                    a = (origin[0] + u[0] * t, origin[1] + u[1] * t)
                    b = (origin[0] + u[0] * (t + piece), origin[1] + u[1] * (t + piece))
                    streets.append(StreetLine(cls, did, wavy(a, b, rng, rng.uniform(0.3, 1.0) * wave)))
                    t += piece + (spacing if rng.random() < 0.2 else 0.0)
    return streets


def major_streets(rng: random.Random) -> list[StreetLine]:
    """Radial avenues from the old town to the edge of the area, and the ring of inner boulevards."""
    streets = []
    for name, road, bearing in RADIALS:
        bend, pts, t = rng.uniform(-7, 7), [], 350.0
        total = 6000.0
        while True:
            ang = math.radians(bearing + bend * math.sin(math.pi * t / total))
            p = (t * math.sin(ang), t * math.cos(ang))
            if not inside(p, 40):
                break
            pts.append(p)
            t += 80.0
        streets.append(StreetLine("major", district_of(pts[len(pts) // 2]), pts, name=name, road=road))
    a, b, cy = 1750.0, 1300.0, 80.0
    n = 160
    ring = []
    for k in range(n + 1):
        phi = 2 * math.pi * k / n
        r = 1 + 0.03 * math.sin(3 * phi + 1.0)
        ring.append((a * r * math.cos(phi), cy + b * r * math.sin(phi)))
    per = n // len(RING)
    for s, name in enumerate(RING):
        pts = ring[s * per : (s + 1) * per + 1] if s < len(RING) - 1 else ring[s * per :]
        streets.append(StreetLine("major", district_of(pts[len(pts) // 2]), pts, name=name))
    return streets


def name_streets(streets: list[StreetLine], rng: random.Random) -> None:
    """Give every unnamed street a unique real-ish French name."""
    used = {s.name for s in streets if s.name}
    for s in streets:
        if s.name:
            continue
        for _attempt in range(500):
            person = rng.random() < 0.6
            stem = rng.choice(PEOPLE if person else PLACES)
            if s.cls == "collector":
                prefix = rng.choice(["Avenue", "Rue", "Boulevard"] if person else ["Avenue", "Rue"])
            else:
                prefix = rng.choices(["Rue", "Allée", "Chemin"], [75, 15, 0 if person else 10])[0]
            name = f"{prefix} {stem}"
            if name not in used:
                break
        else:
            name = f"{name} ({s.district})"
        used.add(name)
        s.name = name


def place_lamps(street: StreetLine, rng: random.Random) -> None:
    """Lamp positions every 25-35 m along the street."""
    total = length(street.pts)
    d, out = rng.uniform(5, 15), []
    while d <= total - 5:
        out.append(d)
        d += rng.uniform(25, 35)
    street.lamp_at = out


def select_streets(majors: list[StreetLine], grid: list[StreetLine], rng: random.Random) -> list[StreetLine]:
    """Keep the main streets and a random part of the grid so that exactly N_LAMPS lamps remain."""
    kept, total = [], 0
    for s in majors:
        kept.append(s)
        total += len(s.lamp_at)
    pool = grid[:]
    rng.shuffle(pool)
    for s in pool:
        if len(s.lamp_at) < 3:
            continue
        if total + len(s.lamp_at) <= N_LAMPS:
            kept.append(s)
            total += len(s.lamp_at)
        elif N_LAMPS - total >= 3:
            keep = N_LAMPS - total
            s.lamp_at = s.lamp_at[:keep]
            s.pts = [snap(p) for p in cut(s.pts, s.lamp_at[-1] + 8.0)]
            kept.append(s)
            total = N_LAMPS
    if total != N_LAMPS:
        raise SystemExit(f"the street candidates hold only {total} lamps; lower the block sizes")
    order = {id(s): k for k, s in enumerate(majors + grid)}
    kept.sort(key=lambda s: order[id(s)])
    return kept


# -- cabinets ---------------------------------------------------------------------------------------------------


def runs_by_district(streets: list[StreetLine]) -> dict[str, list[list[LampSpot]]]:
    """Per district, the street runs of lamps in seq order (a main street is split where it changes district)."""
    runs: dict[str, list[list[LampSpot]]] = {d[0]: [] for d in DISTRICTS}
    for s in streets:
        spots = [LampSpot(s, k + 1, at(s.pts, d)[0]) for k, d in enumerate(s.lamp_at)]
        if s.cls != "major":
            for spot in spots:
                spot.district = s.district
            runs[s.district].append(spots)
            continue
        for spot in spots:
            spot.district = district_of(spot.xy)
        pieces: list[list[LampSpot]] = []
        for spot in spots:
            if pieces and pieces[-1][0].district == spot.district:
                pieces[-1].append(spot)
            else:
                pieces.append([spot])
        merged: list[list[LampSpot]] = []
        for piece in pieces:  # a short piece (the line wavering along a border) joins the previous one
            if merged and len(piece) < 8:
                merged[-1].extend(piece)
            else:
                merged.append(piece)
        if len(merged) > 1 and len(merged[0]) < 8:
            merged[1][:0] = merged.pop(0)
        for piece in merged:
            for spot in piece:
                spot.district = piece[0].district
            runs[piece[0].district].append(piece)
    return runs


def chain(runs: list[list[LampSpot]]) -> list[list[LampSpot]]:
    """Order the runs of a district by proximity (greedy nearest end), flipping runs as needed."""
    left = runs[:]
    first = min(left, key=lambda r: (r[0].xy[0] + r[0].xy[1], r[0].street.id, r[0].seq))
    left.remove(first)
    out = [first]
    while left:
        end = out[-1][-1].xy
        best, best_d, flip = 0, math.inf, False
        for k, r in enumerate(left):
            for candidate_flip, p in ((False, r[0].xy), (True, r[-1].xy)):
                d = math.dist(end, p)
                if d < best_d:
                    best, best_d, flip = k, d, candidate_flip
        r = left.pop(best)
        out.append(r[::-1] if flip else r)
    return out


def allocate(runs: dict[str, list[list[LampSpot]]]) -> dict[str, int]:
    """Cabinets per district, proportional to its lamps (largest remainder), N_CABINETS in all."""
    counts = {d: sum(len(r) for r in rs) for d, rs in runs.items()}
    exact = {d: c * N_CABINETS / N_LAMPS for d, c in counts.items()}
    alloc = {d: max(1, math.floor(x)) for d, x in exact.items()}
    for d in sorted(exact, key=lambda d: (alloc[d] - exact[d], d))[: N_CABINETS - sum(alloc.values())]:
        alloc[d] += 1
    return alloc


def cut_points(lamps: list[LampSpot], n: int, rng: random.Random) -> list[int]:
    """Where to cut a district's chain into n cabinets: near equal sizes, snapped to street changes when close."""
    total = len(lamps)
    boundaries = [k for k in range(1, total) if lamps[k].street is not lamps[k - 1].street]
    cuts, prev = [], 0
    for j in range(1, n):
        target = round(j * total / n + rng.uniform(-0.1, 0.1) * total / n)
        near = [b for b in boundaries if abs(b - target) <= 12]
        if near:
            target = min(near, key=lambda b: (abs(b - target), b))
        left = n - j  # cabinets still to fill after this cut
        lo = max(prev + 60, total - MAX_PER_CABINET * left)
        hi = min(prev + MAX_PER_CABINET, total - 60 * left)
        target = min(max(target, lo), hi)
        cuts.append(target)
        prev = target
    return [0, *cuts, total]


# -- controllers, signs, parking -----------------------------------------------------------------------------


def crossings(streets: list[StreetLine]) -> list[tuple[int, Point, StreetLine, StreetLine]]:
    """Proper crossings between a main or collector street and another street, with a score by street class."""
    rank = {"major": 3, "collector": 2, "residential": 1}
    cell = 250.0
    grid: dict[tuple[int, int], list[tuple[int, Point, Point]]] = {}
    for k, s in enumerate(streets):
        for a, b in itertools.pairwise(s.pts):
            for cx in range(math.floor(min(a[0], b[0]) / cell), math.floor(max(a[0], b[0]) / cell) + 1):
                for cy in range(math.floor(min(a[1], b[1]) / cell), math.floor(max(a[1], b[1]) / cell) + 1):
                    grid.setdefault((cx, cy), []).append((k, a, b))
    found: dict[tuple[int, int, int, int], tuple[int, Point, StreetLine, StreetLine]] = {}
    for key in sorted(grid):
        segs = grid[key]
        for i in range(len(segs)):
            k1, a, b = segs[i]
            for j in range(i + 1, len(segs)):
                k2, c, d = segs[j]
                s1, s2 = streets[k1], streets[k2]
                score = rank[s1.cls] + rank[s2.cls]
                if k1 == k2 or score < 4:
                    continue
                r = (b[0] - a[0], b[1] - a[1])
                q = (d[0] - c[0], d[1] - c[1])
                den = r[0] * q[1] - r[1] * q[0]
                if abs(den) < 0.5 * math.hypot(*r) * math.hypot(*q):  # parallel-ish (< 30 degrees)
                    continue
                t = ((c[0] - a[0]) * q[1] - (c[1] - a[1]) * q[0]) / den
                v = ((c[0] - a[0]) * r[1] - (c[1] - a[1]) * r[0]) / den
                if 0.001 < t < 0.999 and 0.001 < v < 0.999:
                    p = (a[0] + t * r[0], a[1] + t * r[1])
                    lo_k, hi_k = min(k1, k2), max(k1, k2)
                    found[(lo_k, hi_k, round(p[0]), round(p[1]))] = (score, p, streets[lo_k], streets[hi_k])
    return [found[key] for key in sorted(found)]


def pick_controllers(streets: list[StreetLine], rng: random.Random) -> list[tuple[int, Point, StreetLine, StreetLine]]:
    """N_CONTROLLERS crossings, the busiest first, spread out (at least 200 m apart where possible)."""
    candidates = crossings(streets)
    rng.shuffle(candidates)
    candidates.sort(key=lambda c: -c[0])
    chosen: list[tuple[int, Point, StreetLine, StreetLine]] = []
    for spacing in (260.0, 200.0, 120.0, 0.0):
        for c in candidates:
            if len(chosen) == N_CONTROLLERS:
                return chosen
            if c not in chosen and all(math.dist(c[1], o[1]) >= spacing for o in chosen):
                chosen.append(c)
    raise SystemExit(f"only {len(chosen)} crossings for {N_CONTROLLERS} controllers")


def parking_bays(streets: list[StreetLine]) -> list[tuple[str, str, Point, int, list[Point]]]:
    """The parking sites and the position of each bay sensor."""
    out: list[tuple[str, str, Point, int, list[Point]]] = []
    for name, kind, px, py, count in PARKING:
        x, y = float(px), float(py)
        bays: list[Point] = []
        if kind == "carpark":  # levels of 6 rows x 20 bays, 2.5 m x 6 m, each level drawn 1.2 m apart
            for k in range(count):
                level, rest = divmod(k, 120)
                row, col = divmod(rest, 20)
                bays.append((x - 24 + col * 2.5 + level * 1.2, y - 15 + row * 6.0 + level * 1.2))
        else:  # bays on both sides of the nearest streets, every 5.5 m
            near = sorted(streets, key=lambda s: (min(math.dist((x, y), p) for p in s.pts), s.id))
            for s in near:
                d = 6.0
                total = length(s.pts)
                while d < total - 6 and len(bays) < count:
                    p, u = at(s.pts, d)
                    for side in (1, -1):
                        if len(bays) < count and math.dist(p, (x, y)) < 500:
                            bays.append((p[0] + side * 4.0 * u[1], p[1] - side * 4.0 * u[0]))
                    d += 5.5
                if len(bays) == count:
                    break
        out.append((name, kind, (x, y), count, bays))
    return out


# -- output -----------------------------------------------------------------------------------------------------


def csv_text(header: list[str], rows: list[list[object]]) -> str:
    """CSV with LF line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def fmt(x: float) -> str:
    """A coordinate with 6 decimals."""
    return f"{x:.6f}"


def generate(seed: int = SEED) -> dict[str, str]:
    """Every file of the site, by name."""
    rng = random.Random(seed)
    majors = major_streets(rng)
    grid = grid_streets(rng)
    for s in majors + grid:
        s.pts = [snap(p) for p in s.pts]
        place_lamps(s, rng)
    streets = select_streets(majors, grid, rng)
    for k, s in enumerate(streets, start=1):
        s.id = f"ST-{k:04d}"
        s.power = rng.choice(POWER[s.cls])
    name_streets(streets, rng)

    # cabinets and lamps
    runs = runs_by_district(streets)
    alloc = allocate(runs)
    cabinet_rows, lamp_rows = [], []
    cab_no = lamp_no = 0
    for did, *_ in DISTRICTS:
        lamps = [spot for run in chain(runs[did]) for spot in run]
        cuts = cut_points(lamps, alloc[did], rng)
        for a, b in itertools.pairwise(cuts):
            cab_no += 1
            cab_id = f"CAB-{cab_no:04d}"
            chunk = lamps[a:b]
            cx = sum(s.xy[0] for s in chunk) / len(chunk)
            cy = sum(s.xy[1] for s in chunk) / len(chunk)
            host = min(chunk, key=lambda s: (math.dist(s.xy, (cx, cy)), s.seq))
            lon, lat = to_lonlat((host.xy[0] + 4.0, host.xy[1] + 4.0))
            name = f"{host.street.name} ({cab_no})"
            cabinet_rows.append([cab_id, name, did, fmt(lat), fmt(lon), "", PORT_CABINET + cab_no - 1, "", ""])
            for index, spot in enumerate(chunk):
                lamp_no += 1
                lon, lat = to_lonlat(spot.xy)
                rated, legacy = spot.street.power
                lamp_rows.append(
                    [f"L-{lamp_no:06d}", cab_id, index, fmt(lat), fmt(lon), rated, legacy, spot.street.id, spot.seq]
                )

    # traffic controllers at crossings
    controller_rows = []
    for k, (score, p, s1, s2) in enumerate(pick_controllers(streets, rng), start=1):
        lon, lat = to_lonlat(p)
        detectors = {6: 8, 5: 6}.get(score, 4)
        name = f"{s1.name} / {s2.name}"
        controller_rows.append(
            [f"TLC-{k:03d}", name, district_of(p), fmt(lat), fmt(lon), "", PORT_CONTROLLER + k - 1, "", "", detectors]
        )

    # message signs on the radial entries, facing inbound traffic (signs stand on the right-hand side)
    sign_rows = []
    for r, radial in enumerate(majors[: len(RADIALS)]):
        total = length(radial.pts)
        for j, back in enumerate((100.0, 450.0, 800.0, 1150.0), start=1):
            p, u = at(radial.pts, total - back)
            inbound = (-u[0], -u[1])
            bearing = math.degrees(math.atan2(inbound[0], inbound[1])) % 360
            lon, lat = to_lonlat((p[0] + 9.0 * inbound[1], p[1] - 9.0 * inbound[0]))
            k = r * 4 + j
            name = f"PMV {radial.name} {j}"
            sign_rows.append(
                [f"VMS-{k:02d}", name, district_of(p), fmt(lat), fmt(lon), radial.road, f"{bearing:.1f}", "",
                 PORT_SIGN + k - 1, "", ""]
            )  # fmt: skip

    # parking sites and their bay sensors
    parking_rows, sensor_rows = [], []
    for k, (name, kind, xy, count, bays) in enumerate(parking_bays(streets), start=1):
        site_id = f"PK-{k:02d}"
        capacity = count + (rng.randint(0, 40) if kind == "carpark" else 0)
        lon, lat = to_lonlat(xy)
        parking_rows.append(
            [site_id, name, district_of(xy), kind, fmt(lat), fmt(lon), capacity, "", PORT_PARKING + k - 1, "", ""]
        )
        for index, bay in enumerate(bays):
            lon, lat = to_lonlat(bay)
            sensor_rows.append([f"PS-{k:02d}-{index + 1:04d}", site_id, index, fmt(lat), fmt(lon)])

    features = []
    for s in streets:
        coords = [list(to_lonlat(p)) for p in s.pts]
        props = {"id": s.id, "name": s.name, "district": s.district}
        feature = {"type": "Feature", "properties": props, "geometry": {"type": "LineString", "coordinates": coords}}
        features.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
    geojson = '{"type":"FeatureCollection","features":[\n' + ",\n".join(features) + "\n]}\n"

    endpoint = ["host", "port", "unit", "poll_ms"]
    return {
        "site.yaml": site_yaml(seed),
        "users.yaml": USERS_YAML,
        "streets.geojson": geojson,
        "cabinets.csv": csv_text(["id", "name", "district", "lat", "lon", *endpoint], cabinet_rows),
        "lamps.csv": csv_text(
            ["id", "cabinet", "index", "lat", "lon", "rated_w", "legacy_w", "street", "seq"], lamp_rows
        ),
        "controllers.csv": csv_text(["id", "name", "district", "lat", "lon", *endpoint, "detectors"], controller_rows),
        "signs.csv": csv_text(["id", "name", "district", "lat", "lon", "road", "bearing_deg", *endpoint], sign_rows),
        "parking.csv": csv_text(["id", "name", "district", "type", "lat", "lon", "capacity", *endpoint], parking_rows),
        "parking_sensors.csv": csv_text(["id", "site", "index", "lat", "lon"], sensor_rows),
    }


# The security section and the demonstration users (the same as config/small; see scada/security).
SECURITY_YAML = """
# Who may do what: OPC UA Part 18 roles (Anonymous, AuthenticatedUser, Observer, Operator, Engineer,
# Supervisor, ConfigureAdmin, SecurityAdmin). Users and their roles are in users_file (`cityscada users`).
# A permission left out keeps its default; `call` is per catalog action ("lamp.set_level") or per kind ("lamp.*").
security:
  users_file: users.yaml
  allow_anonymous_read: false      # the None endpoint is off unless turned on; even then anonymous may only read
  permissions:                     # permission -> roles
    read: [Observer, Operator, Engineer, Supervisor, SecurityAdmin]
    write_setpoints: [Operator, Engineer, Supervisor]
    call:
      lamp.*: [Operator, Engineer, Supervisor]
      cabinet.*: [Operator, Engineer, Supervisor]
      controller.*: [Engineer, Supervisor]
      sign.*: [Operator, Supervisor]
      parking_site.*: [Operator, Supervisor]
      incident.report: [Operator, Supervisor]
      incident.close: [Operator, Supervisor]
    acknowledge_alarms: [Operator, Supervisor]
    shelve_alarms: [Supervisor]
    see_personal_data: [Supervisor]
    trust_certificates: [SecurityAdmin]
"""

USERS_YAML = """# DEMONSTRATION USERS - NOT FOR PRODUCTION.
# One user per OPC UA role, with passwords published here on purpose so that anyone can try the demo:
#
#   user           role            password (demo only)
#   observer       Observer        observer-demo-pass
#   operator       Operator        operator-demo-pass
#   engineer       Engineer        engineer-demo-pass
#   supervisor     Supervisor      supervisor-demo-pass
#   configadmin    ConfigureAdmin  configadmin-demo-pass
#   securityadmin  SecurityAdmin   securityadmin-demo-pass
#
# Anyone who reads this comment can log in as these users: before any real use, remove them
# (`cityscada users remove --site <folder> <name>`) and create real accounts (`cityscada users add`).
# The file itself holds argon2id hashes only, never a password; keep it mode 0600.
# config/dijon/users.yaml is written by tools/gen_dijon.py (same demo users as config/small).

users:
  - name: "configadmin"
    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$YgUilgzT4SCueisnNrscUg$8DbHgdzLrKKaqSIDuoZ6xeSWQ0tDFl/ezqxN9mJmPYU"
    roles: [ConfigureAdmin]
  - name: "engineer"
    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$HZkJAqo6ijO+XtMb1xrd3Q$1HmBtDUbW/9zmOcxVNsZdqhcF4P0rK5OrvgnXqwhE1I"
    roles: [Engineer]
  - name: "observer"
    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$rwI6sefgHtB91I7idoD+DQ$Z2yX1+psgsKtq0gwvf/59tuBjgkYwAISFtDt8XK4xa4"
    roles: [Observer]
  - name: "operator"
    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$lY2rVa3AaYg/V4qReUv42w$dJ68JGPxzijaAb5D5qfHN4vpgKWYaasxu0U/xi8POwo"
    roles: [Operator]
  - name: "securityadmin"
    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$Ptb2s8iWYwoZznBC3qr4hw$5hRU+7iV1DGaMf1pIRUQ+7H2fjGvNfQD2oyJWITRiak"
    roles: [SecurityAdmin]
  - name: "supervisor"
    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$ebNcMsnJQg8gBjFVwVcrww$YW+WhWYv0umCDRTA9AAImlq8PLQT5hw+p1C93/vKEqs"
    roles: [Supervisor]
"""


# The lighting section (see scada/lighting): night profiles per district, presence response, overrides.
LIGHTING_YAML = """
# Lighting automation (scada/lighting): switching by the astronomical clock, night profiles per district,
# presence response (local boost and central follow-me), maintenance overrides.
lighting:
  switch: {"on": "sunset+10min", "off": "sunrise-10min"}
  profiles:
    residential: [{from: "on", level: 100}, {from: "22:30", level: 50}, {from: "23:30", level: 30}, {from: "off-45min", level: 70}]
    main-roads: [{from: "on", level: 100}, {from: "00:30", level: 50}, {from: "05:00", level: 100}]
  districts: {centre-ville: main-roads, toison-dor: main-roads, "*": residential}
  presence: {boost_level: 100, hold_seconds: 90, follow_me: {lamps_ahead: 3, hold_seconds: 60}}
  overrides: {max_minutes: 480}
"""


# Incident playbooks and parking guidance (scada/incidents, scada/parking).
INCIDENTS_YAML = r"""
# Incident response (scada/incidents): per incident kind, messages on the signs upstream of the location, a plan on
# the controllers near it (always for a duration: the driver's watchdog lets it lapse if the control post is lost),
# the entrance display of the car parks near it, the operator notification. auto_execute: false only proposes.
# Sign text: {road} {distance_km} {distance_m} {kind}; notification: {id} {kind} {lat} {lon} {description}.
playbooks:
  accident:
    auto_execute: true
    signs: {within_m: 3000, upstream_only: true, cone_deg: 60, text: "ACCIDENT\n{road} A {distance_km} KM\nRALENTIR",
            pictogram: 1, flashing: true}
    traffic: {within_m: 400, plan: 9, duration_s: 1800}
    parking: {within_m: 800, display_mode: null}
    notify: {severity: 800, message: "Accident reported at {lat:.5f},{lon:.5f}: {description}"}
  roadworks:
    auto_execute: false
    signs: {within_m: 2000, text: "TRAVAUX\n{road} A {distance_km} KM\nPRUDENCE", pictogram: 2}
    notify: {severity: 300, message: "Roadworks reported at {lat:.5f},{lon:.5f}: {description}"}
  congestion:
    auto_execute: false
    signs: {within_m: 4000, text: "BOUCHON\nA {distance_km} KM\nSUIVEZ DEVIATION", pictogram: 3}
    traffic: {within_m: 600, plan: 4, duration_s: 3600}
    notify: {severity: 400, message: "Congestion reported at {lat:.5f},{lon:.5f}: {description}"}
  hazard:
    auto_execute: true
    signs: {within_m: 2000, text: "DANGER\n{road} A {distance_km} KM\nPRUDENCE", pictogram: 6, flashing: true}
    parking: {within_m: 300, display_mode: 2}
    notify: {severity: 700, message: "Hazard reported at {lat:.5f},{lon:.5f}: {description}"}

# Parking guidance (scada/parking): signs showing the free places of car parks ("COMPLET" when full, "FERME" when
# closed); labels of at most 10 characters; an incident holding the sign has priority.
parking_guidance:
  - sign: VMS-04
    lines: [{site: PK-03, label: "GRANGIER"}, {site: PK-02, label: "DAUPHINE"}, {site: PK-01, label: "DARCY"}]
  - sign: VMS-36
    lines: [{site: PK-01, label: "DARCY"}, {site: PK-08, label: "MONGE"}, {site: PK-05, label: "TIVOLI"}]
  - sign: VMS-28
    lines: [{site: PK-05, label: "TIVOLI"}, {site: PK-04, label: "STE-ANNE"}, {site: PK-08, label: "MONGE"}]
  - sign: VMS-16
    lines: [{site: PK-06, label: "CLEMENCEAU"}, {site: PK-07, label: "TREMOUILLE"}, {site: PK-10, label: "REPUBLIQUE"}]
"""


# The alarms section (see scada/alarms): severities, car-park-full hysteresis, flood suppression, shelving.
ALARMS_YAML = """
# Alarms & Conditions (scada/alarms, OPC UA Part 9): severity (1..1000) of each alarm kind, the car-park-full
# hysteresis on the Free count, ISA-18.2 suppression of a cabinet's lamp alarms while the cabinet has lost its
# communication or its mains (counted in the cabinet's alarm), the longest shelving, Confirm after Acknowledge.
alarms:
  severities: {lamp_failure: 300, comm_lost: 700, door_open: 500, mains_failure: 800, controller_fault: 900,
               signal_lamp_failure: 600, sign_fault: 400, car_park_full: 200}
  car_park_full: {full_at_free: 0, clear_at_free: 5}
  flood: {suppress_children_on: [comm_lost, mains_failure], release_delay_s: 10}
  shelving: {max_hours: 8}
  confirm: true
"""


def site_yaml(seed: int) -> str:
    """The entry point of the site."""
    districts = "\n".join(f'  - {{id: {d[0]}, name: "{d[1]}"}}' for d in DISTRICTS)
    return (
        f"""\
# Dijon demonstration site: generated by tools/gen_dijon.py (seed {seed}); do not edit by hand, regenerate.
# A synthetic but city-scale inventory: see config/README.md for the format and how to regenerate.

site:
  name: dijon
  title: "Dijon Métropole"
  latitude: {LAT0:.4f}
  longitude: {LON0:.4f}
  timezone: Europe/Paris

defaults:
  modbus: {{host: 127.0.0.1, unit: 1}}
  poll_ms: {{cabinet: 5000, controller: 1000, sign: 5000, parking_site: 2000}}

districts:
{districts}

streets: streets.geojson
cabinets: cabinets.csv
lamps: lamps.csv
controllers: controllers.csv
signs: signs.csv
parking: parking.csv
parking_sensors: parking_sensors.csv

historian:
  url: "sqlite:///var/dijon/history.sqlite"
"""
        + LIGHTING_YAML
        + SECURITY_YAML
        + INCIDENTS_YAML
        + ALARMS_YAML
    )


def main(argv: list[str] | None = None) -> int:
    """Write the site folder, then load it back as a check."""
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=root / "config" / "dijon", help="site folder to write")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed (default %(default)s)")
    parser.add_argument("--no-check", action="store_true", help="do not load the result back")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in generate(args.seed).items():
        (args.out / name).write_text(text, encoding="utf-8", newline="\n")
    (args.out / "users.yaml").chmod(0o600)  # password hashes: owner only
    if not args.no_check:
        sys.path.insert(0, str(root))
        from scada.site.loader import load_site, site_summary

        start = time.perf_counter()
        site = load_site(args.out)
        print(f"{site_summary(site)} (loaded in {time.perf_counter() - start:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
