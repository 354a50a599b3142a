"""`include "file.dial"` → modules loaded once each, in order, with errors at the include line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialc.compiler import compile_plan
from dialc.diagnostics import Diagnostics
from dialc.frontend import MAX_INCLUDE_DEPTH, load_modules, run_frontend

ROOT = Path(__file__).resolve().parent.parent
MODEL = 'model {name} {{ path = "builtin:smollm2-135m-instruct" }}\n'


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def codes(path: Path, overrides: list[str] | None = None) -> list[str]:
    return [d.code for d in run_frontend(path, overrides).diags.items]


def test_realestate_uses_the_shared_taxonomy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    front = run_frontend(Path("specs/realestate.dial"))
    assert front.diags.items == [] and front.ir is not None
    assert [m.file for m in front.modules] == ["specs/shared/realestate_taxonomy.dial",
                                               "specs/realestate.dial"]
    scenarios = compile_plan(front.ir, front.path).step("ingest.dialogues").params.scenarios  # type: ignore[attr-defined]
    assert set(scenarios) == {"rental", "purchase", "viewing", "transaction", "after_sales",
                              "complaint"}


def test_included_files_come_first_and_load_once(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.dial": 'include "a.dial"\ninclude "b.dial"\npipeline p { seed = 1 }\n',
        "a.dial": 'include "common.dial"\n' + MODEL.format(name="a"),
        "b.dial": 'include "common.dial"\n' + MODEL.format(name="b"),
        "common.dial": 'scenarios { x "X" weight 1 }\n',
    })
    diags = Diagnostics()
    modules = load_modules(tmp_path / "main.dial", diags, "main.dial")
    assert diags.items == []
    assert [Path(m.file).name for m in modules] == ["common.dial", "a.dial", "b.dial", "main.dial"]
    # models a and b are unused; common.dial was read once, so its scenarios are not duplicated
    assert codes(tmp_path / "main.dial") == ["unused", "unused"]


def test_paths_are_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path, {
        "specs/main.dial": 'include "shared/models.dial"\npipeline p { seed = 1 }\n',
        "specs/shared/models.dial": 'include "../../common/taxonomy.dial"\n',
        "common/taxonomy.dial": 'scenarios { x "X" weight 1 }\n',
    })
    (tmp_path / ".git").mkdir()  # the project root: includes may climb up to it (dialc.security)
    front = run_frontend(tmp_path / "specs" / "main.dial")
    assert front.diags.items == []
    assert front.ir is not None and front.ir.of_kind("scenarios")


def test_diagnostics_in_included_files_name_that_file(tmp_path: Path) -> None:
    write(tmp_path, {"main.dial": 'include "lib/models.dial"\npipeline p { seed = 1 }\n',
                     "lib/models.dial": "// shared models\n" + MODEL.format(name="spare")})
    [diag] = run_frontend(tmp_path / "main.dial").diags.items
    assert diag.code == "unused" and diag.span is not None
    assert diag.span.file.endswith("lib/models.dial") and diag.span.line == 2


def test_missing_include_is_reported_at_the_include(tmp_path: Path) -> None:
    write(tmp_path, {"main.dial": 'pipeline p { seed = 1 }\ninclude   "nope.dial"\n'})
    [diag] = run_frontend(tmp_path / "main.dial").diags.items
    assert diag.code == "include-error" and "file not found" in diag.message
    assert diag.span is not None and (diag.span.line, diag.span.col) == (2, 11)


def test_include_cycle_names_every_file(tmp_path: Path) -> None:
    write(tmp_path, {"main.dial": 'include "a.dial"\npipeline p { seed = 1 }\n',
                     "a.dial": 'include "b.dial"\n', "b.dial": 'include "c.dial"\n',
                     "c.dial": 'include "a.dial"\n'})
    [diag] = run_frontend(tmp_path / "main.dial").diags.items
    assert diag.code == "include-cycle"
    names = [Path(part.strip()).name for part in diag.message.split(":", 1)[1].split("->")]
    assert names == ["a.dial", "b.dial", "c.dial", "a.dial"]
    assert diag.span is not None and diag.span.file.endswith("c.dial")


def test_a_file_including_itself(tmp_path: Path) -> None:
    write(tmp_path, {"main.dial": 'include "main.dial"\npipeline p { seed = 1 }\n'})
    assert codes(tmp_path / "main.dial") == ["include-cycle"]


def test_include_depth_is_limited(tmp_path: Path) -> None:
    depth = MAX_INCLUDE_DEPTH + 3
    files = {f"f{i}.dial": f'include "f{i + 1}.dial"\n' for i in range(depth)}
    files[f"f{depth}.dial"] = "pipeline p { seed = 1 }\n"
    write(tmp_path, files)
    diags = run_frontend(tmp_path / "f0.dial").diags.items
    assert [d.code for d in diags] == ["include-error"]
    assert f"deeper than {MAX_INCLUDE_DEPTH}" in diags[0].message


def test_syntax_error_in_an_included_file_stops_the_checks(tmp_path: Path) -> None:
    write(tmp_path, {"main.dial": 'include "lib.dial"\nmodel m { }\n',
                     "lib.dial": "model x { path }\n"})
    front = run_frontend(tmp_path / "main.dial")
    [diag] = front.diags.items
    assert diag.code == "syntax" and diag.span is not None and diag.span.file.endswith("lib.dial")
    assert front.ir is None


def test_declarations_across_files_clash(tmp_path: Path) -> None:
    main = 'include "lib.dial"\npipeline p { seed = 1 }\n' + MODEL.format(name="m")
    write(tmp_path, {"main.dial": main,
                     "lib.dial": MODEL.format(name="m")})
    [diag, unused] = sorted(run_frontend(tmp_path / "main.dial").diags.items, key=lambda d: d.code)
    assert diag.code == "duplicate-name" and diag.span is not None
    assert diag.span.file.endswith("main.dial") and diag.span.line == 3
    assert diag.notes[0].span is not None and diag.notes[0].span.file.endswith("lib.dial")
    assert unused.code == "unused"


def test_overrides_reach_included_declarations(tmp_path: Path) -> None:
    write(tmp_path, {"main.dial": 'include "lib.dial"\npipeline p { seed = 1 }\n',
                     "lib.dial": MODEL.format(name="m").replace("}", " temperature = 0.5 }")})
    front = run_frontend(tmp_path / "main.dial", ["model.m.temperature=1.5"])
    assert front.ir is not None
    assert front.ir.find("m", ("model",))[0].fields["temperature"] == 1.5
    assert codes(tmp_path / "main.dial", ["model.m.temperature=9"]) == ["out-of-range", "unused"]
