"""Evaluation reports: report.json, a readable report.md and a PNG chart, plus a terminal summary.

The chart has three panels: F1 and recall@k by question type, the reliability diagram (accuracy of
the best guess against its confidence, 10 bins) and the risk-coverage curve (metric definitions:
:mod:`qa.evaluation.metrics`, :mod:`qa.evaluation.selective`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.evaluation.metrics import ItemResult, aggregate, aggregate_by_type, recall_ks
from qa.evaluation.selective import reliability_bins, risk_coverage_curve, thin_curve

# (key, label, kind) kind: "pct" (percent), "ratio" (0-1), "ms", "int"
_HEADLINE = [
    ("count", "questions", "int"),
    ("exact_match", "EM", "pct"),
    ("f1", "F1", "pct"),
    ("f1_answerable", "F1 (answerable)", "pct"),
    ("recall@k", "recall@k", "pct"),
    ("mrr", "MRR", "ratio"),
    ("citation_accuracy", "citation accuracy", "pct"),
    ("citation_validity", "citation validity", "pct"),
    ("no_answer_precision", "no-answer precision", "pct"),
    ("no_answer_recall", "no-answer recall", "pct"),
    ("no_answer_accuracy", "no-answer accuracy", "pct"),
    ("coverage", "coverage", "pct"),
    ("coverage_answerable", "coverage (answerable)", "pct"),
    ("auroc_correct", "AUROC right/wrong", "ratio"),
    ("auroc_answerable", "AUROC answerable", "ratio"),
    ("aurc", "AURC", "ratio"),
    ("coverage_at_90_precision", "coverage@90% precision", "pct"),
    ("ece", "ECE", "ratio"),
    ("ece_calibrated_median", "ECE if calibrated (median)", "ratio"),
    ("ece_p_value", "ECE p-value", "ratio"),
    ("latency_p50_ms", "latency p50 (ms)", "ms"),
    ("latency_p95_ms", "latency p95 (ms)", "ms"),
]

_BY_TYPE_COLUMNS = [
    ("count", "n", "int"),
    ("exact_match", "EM", "pct"),
    ("f1", "F1", "pct"),
    ("recall@k", "recall@k", "pct"),
    ("mrr", "MRR", "ratio"),
    ("citation_accuracy", "cit. acc.", "pct"),
    ("no_answer_accuracy", "no-ans acc.", "pct"),
    ("coverage", "coverage", "pct"),
    ("auroc_correct", "AUROC", "ratio"),
    ("ece", "ECE", "ratio"),
    ("latency_p50_ms", "p50 ms", "ms"),
]


def fmt(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "int":
        return str(int(value))
    if kind == "pct":
        return f"{value:.1f}"
    if kind == "ratio":
        return f"{value:.3f}"
    if kind == "ms":
        return f"{value:.0f}"
    return str(value)


@dataclass
class EvalReport:
    meta: dict
    overall: dict
    by_type: dict
    items: list[ItemResult] = field(default_factory=list)
    # reliability bins and the (thinned) risk-coverage curve of all items, see selective_curves
    selective: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.meta.get("top_k", 5))

    def to_dict(self) -> dict:
        return {
            "meta": self.meta,
            "overall": self.overall,
            "by_type": self.by_type,
            "selective": self.selective,
            "worst_misses": [r.id for r in worst_misses(self.items)],
            "items": [r.to_dict() for r in self.items],
        }


def build_report(results: Sequence[ItemResult], k: int, meta: dict | None = None) -> EvalReport:
    meta = dict(meta or {})
    meta.setdefault("top_k", k)
    return EvalReport(meta=meta, overall=aggregate(results, k), by_type=aggregate_by_type(results, k),
                      items=list(results), selective=selective_curves(results))


def selective_curves(results: Sequence[ItemResult]) -> dict:
    """``reliability``: the 10 reliability bins; ``risk_coverage``: at most 200 points of the
    risk-coverage curve (confidence = best guess's score, correct = guess F1 >= 0.5)."""
    conf = [r.confidence for r in results]
    ok = [r.guess_correct for r in results]
    return {"reliability": reliability_bins(conf, ok), "risk_coverage": thin_curve(risk_coverage_curve(conf, ok))}


def worst_misses(results: Sequence[ItemResult], n: int = 10) -> list[ItemResult]:
    """The ``n`` worst-scored questions: lowest F1 first, confident wrong answers before abstentions."""
    misses = [r for r in results if r.f1 < 1.0 or r.citation_valid is False]
    misses.sort(key=lambda r: (r.f1, -(r.score or 0.0), r.id))
    return misses[:n]


def _label(key: str, label: str, k: int) -> str:
    return label.replace("recall@k", f"recall@{k}")


def _md_escape(s: str) -> str:
    return " ".join(str(s).split()).replace("|", "\\|")


def _clip(s: str, n: int = 220) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _highlight(cited: dict, width: int = 220) -> str:
    """The cited context with the answer in bold, clipped around it."""
    ctx = cited.get("context") or ""
    cs = cited.get("context_start")
    if cs is None or not 0 <= cited["start"] - cs <= cited["end"] - cs <= len(ctx):
        return _clip(ctx, width)
    a, b = cited["start"] - cs, cited["end"] - cs
    left = re.sub(r"\s+", " ", ctx[:a]).lstrip()
    right = re.sub(r"\s+", " ", ctx[b:]).rstrip()
    room = max(20, (width - (b - a)) // 2)
    if len(left) > room:
        left = "…" + left[-room:]
    if len(right) > room:
        right = right[:room] + "…"
    return f"{left}**{ctx[a:b]}**{right}"


def render_markdown(report: EvalReport, chart_name: str | None = "chart.png") -> str:
    k = report.k
    m = report.meta
    lines = ["# QA evaluation report", ""]
    for key in ("created", "eval_files", "setting", "seed", "limit", "remove_articles", "retrieval_mode", "top_k",
                "max_answers", "reader_model_dir", "reader_runtime", "reader_token_keep", "index_build", "git_commit"):
        if key in m and m[key] not in (None, ""):
            value = ", ".join(map(str, m[key])) if isinstance(m[key], list) else m[key]
            lines.append(f"- **{key}**: {value}")
    if isinstance(m.get("machine"), dict):
        from qa import machine

        lines.append(f"- **machine**: {machine.summary(m['machine'])}")
    open_squad = m.get("open_squad")
    if isinstance(open_squad, dict):
        removed = open_squad.get("removed_articles") or []
        lines.append(f"- **open SQuAD**: {open_squad.get('articles')} articles as documents, {len(removed)} removed"
                     + (f" ({', '.join(map(str, removed))})" if removed else "")
                     + f"; {open_squad.get('questions')} questions ({open_squad.get('questions_present')} on present "
                     f"articles, {open_squad.get('questions_removed')} on removed ones: must abstain)")
    lines += ["", "## Overall", "", "| metric | value |", "| --- | ---: |"]
    o = report.overall
    for key, label, kind in _HEADLINE:
        lines.append(f"| {_label(key, label, k)} | {fmt(o.get(key), kind)} |")
    extra_recall = [f"recall@{kk} {fmt(o.get(f'recall@{kk}'), 'pct')}" for kk in recall_ks(k) if kk != k]
    if extra_recall:
        lines += ["", "Also: " + ", ".join(extra_recall) + "."]
    lines += ["", "## By question type", ""]
    header = "| type | " + " | ".join(_label(key, lab, k) for key, lab, _ in _BY_TYPE_COLUMNS) + " |"
    lines += [header, "| --- |" + " ---: |" * len(_BY_TYPE_COLUMNS)]
    for t, agg in report.by_type.items():
        lines.append(f"| {t} | " + " | ".join(fmt(agg.get(key), kind) for key, _, kind in _BY_TYPE_COLUMNS) + " |")
    lines += _selective_markdown(report)
    if chart_name:
        lines += ["", f"![F1 and recall@{k} by question type, reliability diagram, risk-coverage curve]({chart_name})"]
    lines += ["", "## Worst misses", ""]
    misses = worst_misses(report.items)
    if not misses:
        lines.append("None: every question scored F1 = 1.")
    else:
        lines += ["| id | type | question | expected | got | F1 | evidence rank | cited passage |",
                  "| --- | --- | --- | --- | --- | ---: | ---: | --- |"]
        for r in misses:
            expected = " / ".join(r.answers) if r.answers else "(abstain)"
            got = r.prediction if not r.abstained else "(abstained)"
            if r.error:
                got = f"(error: {r.error})"
            if r.cited:
                cited = f"{r.cited['document']}: {_highlight(r.cited)}"
            elif r.top_passage:
                cited = f"(top passage) {r.top_passage['document']}: {_clip(r.top_passage['text'])}"
            else:
                cited = "–"
            rank = str(r.hit_rank) if r.hit_rank else ("miss" if r.answerable else "–")
            lines.append(
                f"| {r.id} | {r.type} | {_md_escape(r.question)} | {_md_escape(expected)} | "
                f"{_md_escape(got)} | {r.f1:.2f} | {rank} | {_md_escape(cited)} |"
            )
    invalid = [r for r in report.items if r.citation_valid is False]
    if invalid:
        lines += ["", "## Invalid citations", ""]
        for r in invalid:
            lines.append(f"- {r.id}: " + "; ".join(_md_escape(e) for e in r.citation_errors))
    errors = [r for r in report.items if r.error]
    if errors:
        lines += ["", "## Errors", "", f"{len(errors)} question(s) raised an error; each is scored wrong "
                  "(EM = F1 = 0, never a correct abstention).", ""]
        lines += [f"- {r.id}: {_md_escape(r.error or '')}" for r in errors]
    lines.append("")
    return "\n".join(lines)


def _ece_floor(o: dict) -> str:
    """`` (a calibrated score would show 0.041 here, 90 % of draws <= 0.060; p = 0.01)``, or "" without it."""
    if o.get("ece_calibrated_median") is None:
        return ""
    p = o.get("ece_p_value")
    return (f" (a perfectly calibrated score would show {fmt(o['ece_calibrated_median'], 'ratio')} on these "
            f"confidences, 90 % of draws <= {fmt(o.get('ece_calibrated_p90'), 'ratio')}"
            + (f"; p = {p:.2f}" if p is not None else "") + ")")


def _selective_markdown(report: EvalReport) -> list[str]:
    """The selective-QA section: definitions in one line, then the reliability bins."""
    o = report.overall
    lines = ["", "## Confidence (selective QA)", "",
             "Confidence = score of the best guess (answered or not); correct = answerable and guess F1 >= 0.5. "
             f"AUROC right/wrong {fmt(o.get('auroc_correct'), 'ratio')}, "
             f"AUROC answerable/unanswerable {fmt(o.get('auroc_answerable'), 'ratio')}, "
             f"AURC {fmt(o.get('aurc'), 'ratio')} (oracle {fmt(o.get('aurc_optimal'), 'ratio')}), "
             f"coverage at 90% precision {fmt(o.get('coverage_at_90_precision'), 'pct')}%, "
             f"ECE {fmt(o.get('ece'), 'ratio')} (10 bins){_ece_floor(o)}; best guesses correct "
             f"{fmt(o.get('accuracy_guess'), 'pct')}%."]
    bins = report.selective.get("reliability") or []
    if bins:
        lines += ["", "| confidence bin | n | mean confidence | accuracy |", "| --- | ---: | ---: | ---: |"]
        for b in bins:
            lines.append(f"| {b['lo']:.1f}–{b['hi']:.1f} | {b['count']} | {fmt(b['confidence'], 'ratio')} | "
                         f"{fmt(b['accuracy'], 'ratio')} |")
    return lines


def render_chart(report: EvalReport, path: Path) -> Path:
    """Three panels: grouped bars of F1 and recall@k per question type (plus overall), the
    reliability diagram and the risk-coverage curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = report.k
    groups = ["overall", *report.by_type.keys()]
    aggs = [report.overall, *report.by_type.values()]
    f1s = [a.get("f1") or 0.0 for a in aggs]
    recalls = [a.get("recall@k") for a in aggs]
    x = list(range(len(groups)))
    width = 0.38
    fig, (ax, ax_rel, ax_rc) = plt.subplots(
        1, 3, figsize=(max(6.0, 0.9 * len(groups) + 2) + 9.0, 4.4), dpi=110,
        gridspec_kw={"width_ratios": [max(6.0, 0.9 * len(groups) + 2), 4.5, 4.5]})
    ax.bar([i - width / 2 for i in x], f1s, width, label="F1", color="#3b75af")
    ax.bar([i + width / 2 for i in x], [r or 0.0 for r in recalls], width, label=f"recall@{k}", color="#ef8636")
    for i, r in enumerate(recalls):
        if r is None:
            ax.text(i + width / 2, 1, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=30, ha="right")
    ax.set_ylim(0, 105)
    ax.set_ylabel("%")
    mode = report.meta.get("retrieval_mode")
    ax.set_title(f"F1 and recall@{k} by question type" + (f" ({mode})" if mode else ""))
    ax.legend(loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    _plot_reliability(ax_rel, report)
    _plot_risk_coverage(ax_rc, report)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _plot_reliability(ax: Any, report: EvalReport) -> None:
    bins = [b for b in (report.selective.get("reliability") or []) if b["count"]]
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    if bins:
        ax.bar([(b["lo"] + b["hi"]) / 2 for b in bins], [b["accuracy"] for b in bins],
               width=[0.9 * (b["hi"] - b["lo"]) for b in bins], color="#3b75af", alpha=0.8, label="accuracy")
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="#ef8636",
                markersize=4, label="(mean confidence, accuracy)")
        for b in bins:
            ax.text((b["lo"] + b["hi"]) / 2, min(0.97, b["accuracy"] + 0.02), str(b["count"]), ha="center",
                    va="bottom", fontsize=6)
    ece = report.overall.get("ece")
    ax.set_title("Reliability" + (f" (ECE {ece:.3f})" if ece is not None else ""))
    ax.set_xlabel("confidence of the best guess")
    ax.set_ylabel("share correct (F1 >= 0.5)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=7)
    ax.grid(alpha=0.3)


def _plot_risk_coverage(ax: Any, report: EvalReport) -> None:
    points = report.selective.get("risk_coverage") or []
    if points:
        ax.step([0.0] + [p["coverage"] for p in points], [points[0]["risk"]] + [p["risk"] for p in points],
                where="post", color="#3b75af")
    ax.axhline(0.1, linestyle="--", color="grey", linewidth=1, label="risk 0.1 (90% precision)")
    aurc = report.overall.get("aurc")
    cov = report.overall.get("coverage_at_90_precision")
    title = "Risk-coverage"
    if aurc is not None:
        title += f" (AURC {aurc:.3f}, cov@90% {cov:.1f}%)"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("coverage (most confident first)")
    ax.set_ylabel("risk (share wrong among covered)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=7)
    ax.grid(alpha=0.3)


def write_report(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md", "chart": out_dir / "chart.png"}
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    render_chart(report, paths["chart"])
    paths["markdown"].write_text(render_markdown(report, paths["chart"].name), encoding="utf-8")
    return paths


def summary_table(report: EvalReport) -> str:
    """Plain-text overall and per-type tables for the terminal."""
    k = report.k
    o = report.overall
    rows = [(_label(key, label, k), fmt(o.get(key), kind)) for key, label, kind in _HEADLINE]
    w = max(len(r[0]) for r in rows)
    out = [f"{name:<{w}}  {value:>8}" for name, value in rows]
    if o.get("errors"):  # only then: the table of a run without errors is unchanged
        out.append(f"{'errors (scored wrong)':<{w}}  {fmt(o['errors'], 'int'):>8}")
    cols = [_label(key, lab, k) for key, lab, _ in _BY_TYPE_COLUMNS]
    table = [["type", *cols]]
    for t, agg in report.by_type.items():
        table.append([t, *(fmt(agg.get(key), kind) for key, _, kind in _BY_TYPE_COLUMNS)])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    out.append("")
    for j, row in enumerate(table):
        out.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
        if j == 0:
            out.append("  ".join("-" * wd for wd in widths))
    return "\n".join(out)
