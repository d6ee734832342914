"""The README stays true: its first two commands are Makefile targets, and every screenshot it
shows is one the browser tests take (re-taken by `make screenshots`, scripts/screenshots.sh)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
SCRIPT = (REPO / "scripts" / "screenshots.sh").read_text(encoding="utf-8")


def shown_images() -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)


def script_pairs() -> dict[str, str]:
    """{name in docs/screenshots: artifact path the tests write}, from the script's SHOTS list."""
    pairs = re.findall(r'^\s*"(\S+) (\S+)"$', SCRIPT, flags=re.M)
    return {shown: taken for taken, shown in pairs}


def test_first_two_commands_are_make_targets():
    block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
    commands = [line.split("#")[0].split() for line in block.splitlines() if line.strip()]
    assert [c[:2] for c in commands[:2]] == [["make", "demo"], ["make", "test"]]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test", "screenshots"):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target


def test_every_screenshot_is_taken_by_a_test():
    images = shown_images()
    assert images, "the README shows the dashboard"
    pairs = script_pairs()
    tests_source = "\n".join(p.read_text(encoding="utf-8") for p in REPO.glob("tests/test_*.py"))
    for image in images:
        path = REPO / image
        assert path.parent == REPO / "docs" / "screenshots", image
        assert path.is_file() and path.stat().st_size > 10_000, f"{image} missing or empty"
        taken = pairs.get(path.name)
        assert taken, f"{image} is not re-taken by scripts/screenshots.sh"
        # written whole ("health-tied.png"), by stem (shot(page, dir, "link-to-one-response")),
        # or by a prefixing helper (f"part2-{name}.png" with name "analysis")
        stem = Path(taken).stem
        spellings = (Path(taken).name, f'"{stem}"', f'"{stem.split("-", 1)[-1]}"')
        assert any(s in tests_source for s in spellings), f"no test writes {taken}"
