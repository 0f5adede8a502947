"""Evaluation: the eval-set format, metrics, the `qa eval` runner and its reports."""

from qa.evaluation.dataset import EvalItem, EvalSetError, EvidenceSpan, load_eval_set
from qa.evaluation.metrics import (
    ItemResult,
    aggregate,
    aggregate_by_type,
    answer_em_f1,
    citation_errors,
    first_hit_rank,
    mean_reciprocal_rank,
    no_answer_metrics,
    percentile,
    recall_at_k,
    score_item,
)
from qa.evaluation.report import EvalReport, build_report, render_markdown, summary_table, write_report
from qa.evaluation.open_squad import OpenSetting, build_open_setting, check_no_training_articles, write_corpus
from qa.evaluation.runner import run_pipeline
from qa.evaluation.selective import (
    aurc,
    auroc,
    coverage_at_precision,
    expected_calibration_error,
    reliability_bins,
    risk_coverage_curve,
    selective_metrics,
)

__all__ = [
    "EvalItem", "EvalReport", "EvalSetError", "EvidenceSpan", "ItemResult", "aggregate", "aggregate_by_type",
    "answer_em_f1", "build_report", "citation_errors", "first_hit_rank", "load_eval_set",
    "mean_reciprocal_rank", "no_answer_metrics", "percentile", "recall_at_k", "render_markdown",
    "run_pipeline", "score_item", "summary_table", "write_report",
    "OpenSetting", "build_open_setting", "check_no_training_articles", "write_corpus",
    "aurc", "auroc", "coverage_at_precision", "expected_calibration_error", "reliability_bins",
    "risk_coverage_curve", "selective_metrics",
]
