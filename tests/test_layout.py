"""The package layout the code relies on: serving (qa.reader, qa.verifier) never imports training, evaluation
or the web layer, so a service can be deployed without them and the reader's hot path stays small."""

import ast
from pathlib import Path

from qa.config import PROJECT_ROOT

FORBIDDEN_FOR_SERVING = ("qa.training", "qa.evaluation", "api", "sklearn")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_serving_does_not_import_training_evaluation_or_web():
    offenders = []
    for pkg in ("reader", "verifier"):
        for path in sorted((PROJECT_ROOT / "qa" / pkg).glob("*.py")):
            if path.name == "train.py" and pkg == "verifier":
                continue  # qa.training.verifier is the verifier's trainer (scikit-learn), not loaded when serving
            for mod in _imports(path):
                if mod.startswith(FORBIDDEN_FOR_SERVING):
                    offenders.append(f"{path.relative_to(PROJECT_ROOT)} imports {mod}")
    assert not offenders, offenders


def test_training_code_lives_in_qa_training():
    reader = {p.name for p in (PROJECT_ROOT / "qa" / "reader").glob("*.py")}
    assert reader == {"__init__.py", "aggregate.py", "decode.py", "forward.py", "int8.py", "int8_torch.py",
                      "model_cache.py", "openvino_rt.py", "packed.py", "pretokenised.py", "reader.py", "token_pruning.py"}
    # int8.py, int8_torch.py, openvino_rt.py: serving (they build their model at warm-up, the first two from
    # calibration files that `qa quantize-reader` writes)
    assert {p.name for p in (PROJECT_ROOT / "qa" / "verifier").glob("*.py")} == {"__init__.py", "features.py",
                                                                                  "model.py"}
    assert (PROJECT_ROOT / "qa" / "training" / "train_config.toml").is_file()
