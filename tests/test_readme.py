"""The README stays a short user guide: at most 250 lines, no commit hashes, no training history."""

from __future__ import annotations

import re

from qa.config import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_is_short_and_has_the_user_sections():
    assert len(README.splitlines()) <= 250
    for heading in ("## Start", "## Ask", "## Serve", "## Index", "## Evaluate", "## API", "## Configuration",
                    "## Troubleshooting", "## Confidence and abstention"):
        assert heading in README, heading


def test_readme_has_no_commit_hashes_or_training_history():
    assert not re.search(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b", README)
    for history in ("train-reader", "soup", "stage 4", "epoch", "learning rate", "lr 1e-4"):
        assert history not in README.lower(), history


def test_readme_links_point_at_files_that_exist():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        assert (PROJECT_ROOT / target).exists(), target
