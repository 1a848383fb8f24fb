"""Benchmark of the check of every image file before ``fit`` and ``predict``
(``automm.data.validate_images``) on a large collection: seconds per 1,000 files from the page
cache, from the disk (the files' pages dropped first, ``posix_fadvise``), and on a simulated slow
or shared disk (each file open delayed by ``--latency-ms``, as a network disk's round trip).

The files are distinct JPEGs made from the fashion photos in ``$AUTOMM_DATA`` or
``../shared/data`` (each re-encoded with its own quality and brightness, mirrored every other
copy), written under ``--folder`` once and reused.

Takes about a minute to write 30,000 files the first time, then about 20 s (2 cores, a local disk).

Usage::

    python benchmarks/bench_image_check.py --files 30000 --folder /tmp/automm_check_images
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_pretrained.py

import argparse  # noqa: E402
import builtins  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))


def make_files(folder: Path, n: int) -> list[str]:
    """``n`` distinct JPEG files under ``folder`` (made once), from the fashion photos."""
    from PIL import Image, ImageEnhance, ImageOps

    from common import data_dir

    sources = sorted((data_dir() / "fashion" / "images").glob("*.jpg"))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i}.jpg"
        if not path.exists():
            with Image.open(sources[i % len(sources)]) as image:
                copy = ImageOps.mirror(image.convert("RGB")) if (i // len(sources)) % 2 else image.convert("RGB")
                factor = 0.85 + 0.3 * ((i * 7919) % 101) / 100
                ImageEnhance.Brightness(copy).enhance(factor).save(path, quality=80 + i % 15)
        paths.append(str(path))
    return paths


def drop_pages(paths: list[str]) -> None:
    """Ask the kernel to forget the files' cached pages (the next read comes from the disk; pages
    not yet written back cannot be dropped, hence the sync)."""
    os.sync()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main(argv: list[str] | None = None) -> None:
    import automm.data as data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=30000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/automm_check_images"))
    parser.add_argument("--latency-ms", type=float, default=2.5)
    args = parser.parse_args(argv)
    from common import describe_setup

    print(describe_setup(args), flush=True)

    start = time.perf_counter()
    paths = make_files(args.folder, args.files)
    print(f"# {len(paths)} files under {args.folder} ({time.perf_counter() - start:.0f} s to make or list), "
          f"cpus={os.cpu_count()}", flush=True)
    real_open = builtins.open

    def slow_open(*a, **k):
        time.sleep(args.latency_ms / 1000)
        return real_open(*a, **k)

    for name in ("disk", "page cache", f"slow disk ({args.latency_ms:g} ms a file)"):
        if name == "disk":
            drop_pages(paths)
        if name.startswith("slow"):
            data.open = slow_open  # the module's file reads go through it
        try:
            start = time.perf_counter()
            data.validate_images("image", paths)
            seconds = time.perf_counter() - start
        finally:
            data.__dict__.pop("open", None)
        print(f"{name:28s}: {seconds:6.1f} s, {1000 * seconds / len(paths):.2f} s per 1,000 files", flush=True)
        print(json.dumps({"case": name, "files": len(paths), "seconds": round(seconds, 2)}), flush=True)


if __name__ == "__main__":
    main()
