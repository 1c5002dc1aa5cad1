"""Benchmark: build the Dijon address space (project builder vs stock asyncua calls), time and peak memory.

Each measurement runs in a fresh subprocess so that its peak RSS (ru_maxrss) is its own:

- project: CityServer.start() on the whole site (asyncua init + city build + listening), then one value for
  every tag through the value path (the steady-state memory of a running server);
- baseline: the same node structure built with stock asyncua calls (add_object / add_variable / add_property per
  node, the best case for asyncua: no per-instance methods or EURange copies, no attribute tuning), on a subset
  of cabinets, scaled linearly to the site's node count (its cost per node does not depend on the site size as
  long as each folder keeps the same number of children, which a subset of whole cabinets guarantees).

Usage: .venv/bin/python bench/address_space.py [--site config/dijon] [--baseline-lamps 2000]
Without config/dijon, a synthetic site of Dijon's sizes is used (and the output says so).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    """Current resident set size of this process, MB."""
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MB (Linux reports ru_maxrss in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(site_arg: str) -> tuple[Any, str]:
    """The site to build and a description of where it comes from."""
    folder = ROOT / site_arg
    if (folder / "site.yaml").exists():
        from scada.site.loader import load_site

        return load_site(folder), str(site_arg)
    sys.path.insert(0, str(ROOT / "tests" / "opcua"))
    from uasites import synthetic_dijon  # type: ignore[import-not-found]

    return synthetic_dijon(), f"synthetic Dijon-sized site ({site_arg} not found)"


async def run_project(site_arg: str) -> dict[str, Any]:
    """Start a CityServer on the whole site; feed every tag once; report times and memory."""
    from scada.model import ValueRecord, WriteRequest, WriteResult, utcnow
    from scada.opcua import CityServer

    class NoCommands:
        async def execute(self, request: WriteRequest) -> WriteResult:
            return WriteResult()

    site, origin = load(site_arg)
    before = rss_mb()
    server = CityServer(site, NoCommands(), "127.0.0.1", 0)
    started = time.perf_counter()
    await server.start()
    start_s = time.perf_counter() - started
    built = rss_mb()
    writer = server.writer
    now = utcnow()
    samples = {"Double": 1.5, "Boolean": True, "UInt16": 3, "UInt32": 4, "Int32": 1, "String": "x"}
    tags = server._builder.tags  # type: ignore[union-attr]
    records = [
        ValueRecord(tag, samples[node.shape.meta["spec"].dtype], 0, now)
        for tag, node in tags.items()
        if "spec" in node.shape.meta  # catalog variables (not the console's LampStates arrays)
    ]
    for index in range(0, len(records), 1000):
        writer.apply(records[index : index + 1000])
    fed = rss_mb()
    stats = server.build_stats
    await server.stop()
    return {
        "origin": origin,
        "counts": {kind.value: count for kind, count in site.counts().items()},
        "nodes": stats.nodes,
        "build_s": stats.seconds,
        "build_cpu_s": stats.cpu_seconds,
        "start_s": start_s,
        "rss_site_mb": before,
        "rss_built_mb": built,
        "rss_fed_mb": fed,
        "peak_rss_mb": peak_rss_mb(),
    }


async def run_baseline(site_arg: str, lamps: int) -> dict[str, Any]:
    """Build whole cabinets (about `lamps` lamps) with stock asyncua calls; report time per node and memory."""
    from asyncua import Server, ua

    from scada.catalog import DEVICE_PROPERTIES, VARIABLES, Kind
    from scada.opcua.datatypes import VARIANT_TYPES, data_type_id

    site, origin = load(site_arg)
    cabinets = []
    for cabinet in site.cabinets.values():
        if sum(len(c.lamps) for c in cabinets) >= lamps:
            break
        cabinets.append(cabinet)
    server = Server()
    await server.init()
    ns = await server.register_namespace("urn:cityscada:city")
    before_nodes = len(server.iserver.aspace.keys())
    before = rss_mb()
    enabled = gc.isenabled()
    gc.disable()
    started = time.perf_counter()
    started_cpu = time.process_time()
    objects = server.get_objects_node()
    city = await objects.add_folder(ua.NodeId("City", ns), ua.QualifiedName("City", ns))
    lighting = await city.add_folder(ua.NodeId("Lighting", ns), ua.QualifiedName("Lighting", ns))

    async def device(parent: Any, kind: Kind, path: str, ident: str, lat: float, lon: float) -> Any:
        node = await parent.add_object(ua.NodeId(path, ns), ua.QualifiedName(ident, ns))
        for spec in VARIABLES[kind]:
            await node.add_variable(
                ua.NodeId(f"{path}/{spec.name}", ns),
                ua.QualifiedName(spec.name, ns),
                ua.Variant(None, ua.VariantType.Null),
                datatype=data_type_id(spec.dtype),
            )
        for (name, dtype), value in zip(DEVICE_PROPERTIES.items(), (lat, lon, ident), strict=True):
            await node.add_property(
                ua.NodeId(f"{path}/{name}", ns), ua.QualifiedName(name, ns), ua.Variant(value, VARIANT_TYPES[dtype])
            )
        return node

    for cabinet in cabinets:
        node = await device(lighting, Kind.CABINET, cabinet.path, cabinet.id, cabinet.lat, cabinet.lon)
        for lamp in cabinet.lamps:
            await device(node, Kind.LAMP, lamp.path, lamp.id, lamp.lat, lamp.lon)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - started_cpu
    if enabled:
        gc.enable()
    nodes = len(server.iserver.aspace.keys()) - before_nodes
    return {
        "origin": origin,
        "lamps": sum(len(c.lamps) for c in cabinets),
        "cabinets": len(cabinets),
        "nodes": nodes,
        "build_s": seconds,
        "build_cpu_s": cpu_seconds,
        "rss_before_mb": before,
        "rss_built_mb": rss_mb(),
        "peak_rss_mb": peak_rss_mb(),
    }


def child(mode: str, site: str, lamps: int) -> dict[str, Any]:
    """Run one measurement in a fresh Python process and return its JSON result."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--site", site, "--baseline-lamps", str(lamps)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Run both measurements and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", default="config/dijon")
    parser.add_argument("--baseline-lamps", type=int, default=2000)
    parser.add_argument("--child", choices=("project", "baseline"))
    args = parser.parse_args()
    if args.child == "project":
        print(json.dumps(asyncio.run(run_project(args.site))))
        return
    if args.child == "baseline":
        print(json.dumps(asyncio.run(run_baseline(args.site, args.baseline_lamps))))
        return

    project = child("project", args.site, args.baseline_lamps)
    baseline = child("baseline", args.site, args.baseline_lamps)
    per_node = baseline["build_s"] / baseline["nodes"]
    scaled_s = per_node * project["nodes"]
    scaled_cpu_s = baseline["build_cpu_s"] / baseline["nodes"] * project["nodes"]
    mb_per_node = (baseline["rss_built_mb"] - baseline["rss_before_mb"]) / baseline["nodes"]
    scaled_mb = baseline["rss_before_mb"] + mb_per_node * project["nodes"]
    print(f"site: {project['origin']}")
    print("devices: " + ", ".join(f"{kind} {count}" for kind, count in project["counts"].items()))
    print()
    print("project (CityServer.start on the whole site, fresh process)")
    print(f"  city nodes built            {project['nodes']:>10,}")
    print(
        f"  build time                  {project['build_s']:>10.2f} s   (goal <= 3 s; CPU {project['build_cpu_s']:.2f} s)"
    )
    print(f"  start time incl. asyncua    {project['start_s']:>10.2f} s   (asyncua's own init is most of the rest)")
    print(
        f"  RSS after build             {project['rss_built_mb']:>10.0f} MB  (site loaded: {project['rss_site_mb']:.0f} MB)"
    )
    print(f"  RSS after 1 value per tag   {project['rss_fed_mb']:>10.0f} MB")
    print(f"  peak RSS                    {project['peak_rss_mb']:>10.0f} MB  (goal <= 800 MB)")
    print()
    print(
        f"baseline (stock add_object/add_variable/add_property, {baseline['cabinets']} cabinets, "
        f"{baseline['lamps']} lamps, fresh process)"
    )
    print(f"  nodes built                 {baseline['nodes']:>10,}")
    print(
        f"  build time                  {baseline['build_s']:>10.2f} s   ({per_node * 1e6:.0f} us/node; "
        f"CPU {baseline['build_cpu_s']:.2f} s)"
    )
    print(f"  RSS added                   {baseline['rss_built_mb'] - baseline['rss_before_mb']:>10.0f} MB")
    print(
        f"  scaled linearly to {project['nodes']:,} nodes: {scaled_s:.1f} s (CPU {scaled_cpu_s:.1f} s), "
        f"about {scaled_mb:.0f} MB RSS"
    )
    print()
    print(
        f"speed-up (scaled baseline / project build): {scaled_s / project['build_s']:.1f}x wall, "
        f"{scaled_cpu_s / project['build_cpu_s']:.1f}x CPU   (goal >= 10x)"
    )
    print(f"memory (scaled baseline RSS / project RSS after build): {scaled_mb / project['rss_built_mb']:.1f}x")


if __name__ == "__main__":
    main()
