"""Map page benchmark: how soon the analysts' map is usable after navigation, measured in the
browser, and how much front-end the package ships.

    python benchmarks/map_page.py --work map-bench               # starts `floodwarn serve`
    python benchmarks/map_page.py --url http://127.0.0.1:8000 --key fw_…   # a running service

"Usable" is the page's own Performance API mark ``floodwarn-usable``: the base map (country,
department and municipality boundaries, the relief) and, with a key, the run's settlements
are drawn — measured from navigation start in a real headless Chromium (Debian's package,
WebGL on SwiftShader: no GPU here), with the service on the same 2-core machine. Each
navigation is a new browser context (nothing cached in the browser). The first navigation
after the service starts is reported apart (the service then reads the run's files and
computes the relief once). Target: usable within 2 s.

Also prints the compressed (gzip -6, as served) size of what the page loads and of every
front-end asset shipped in the package (target: under 2 MB compressed).
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.web import __file__ as web_init  # noqa: E402
from tests.live_service import start_service, wait_for_demo_run  # noqa: E402
from tests.web.conftest import CHROMIUM_ARGS, chromium_path  # noqa: E402

STATIC = Path(web_init).parent / "static"
PAGE_ASSETS = ["index.html", "map.js", "map.css", "vendor/maplibre-gl/maplibre-gl.js",
               "vendor/maplibre-gl/maplibre-gl.css", "vendor/chart.js/chart.umd.min.js"]


def compressed_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=6))


def asset_sizes() -> None:
    page = sum(compressed_size(STATIC / name) for name in PAGE_ASSETS)
    shipped = [p for p in STATIC.rglob("*") if p.is_file()]
    raw = sum(p.stat().st_size for p in shipped)
    packed = sum(compressed_size(p) for p in shipped)
    print(f"page assets: {len(PAGE_ASSETS)} files, {page / 1e6:.2f} MB compressed")
    print(f"all shipped front-end assets (map, API docs, licences): {len(shipped)} files, "
          f"{raw / 1e6:.2f} MB raw, {packed / 1e6:.2f} MB compressed (target < 2 MB)")


def usable_ms(browser: object, url: str, key: str | None) -> tuple[float, dict[str, float]]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        if key:
            page.add_init_script(f"sessionStorage.setItem('floodwarn.key', {key!r})")
        page.goto(url + "/")
        page.wait_for_function("window.floodwarn !== undefined")
        page.wait_for_function("performance.getEntriesByName('floodwarn-usable').length > 0",
                               timeout=120_000)
        usable = float(page.evaluate(
            "performance.getEntriesByName('floodwarn-usable')[0].startTime"))
        marks = page.evaluate("""() => Object.fromEntries(performance.getEntriesByType('mark')
            .map(m => [m.name, Math.round(m.startTime)]))""")
        return usable, marks
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="A running service (default: start one in --work).")
    parser.add_argument("--key", help="An analyst or admin key for --url.")
    parser.add_argument("--work", type=Path, default=Path("map-bench"),
                        help="Folder of the service this benchmark starts (first start builds "
                             "the demo, a few minutes).")
    parser.add_argument("--navigations", type=int, default=10)
    args = parser.parse_args()
    asset_sizes()
    executable = chromium_path()
    if executable is None:
        sys.exit("no Chromium: apt-get install chromium")
    service = None
    if args.url:
        url, key = args.url.rstrip("/"), args.key
    else:
        service = start_service(args.work, config_lines=())
        print("waiting for the demo run (first start builds the demo terrain)…", flush=True)
        wait_for_demo_run(service)
        url, key = service.base, service.admin["X-API-Key"]
        # Restart: the first navigation below meets a service that has read nothing yet.
        service.stop()
        service = start_service(args.work)
        url = service.base
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            first, marks = usable_ms(browser, url, key)
            print(f"first navigation after the service started: usable in {first:.0f} ms "
                  f"({marks})")
            for label, who in (("analyst (settlements drawn)", key), ("public (no key)", None)):
                times = [usable_ms(browser, url, who)[0] for _ in range(args.navigations)]
                print(f"{label}: usable median {statistics.median(times):.0f} ms, "
                      f"p90 {sorted(times)[int(0.9 * (len(times) - 1))]:.0f} ms, "
                      f"max {max(times):.0f} ms over {len(times)} navigations "
                      f"(target < 2000 ms)")
            browser.close()
    finally:
        if service is not None:
            service.stop()


if __name__ == "__main__":
    main()
