"""Plan → a drawing of its DAG (mermaid flowchart or Graphviz dot), deterministic text."""

from __future__ import annotations

from dialc.plan import Plan

SHAPES = {"ingest": ("[(", ")]"), "finetune": ("[[", "]]"), "evaluate": ("{{", "}}")}


def to_mermaid(plan: Plan) -> str:
    lines = ["flowchart TD"]
    for step in plan.steps:
        left, right = SHAPES.get(step.kind, ("[", "]"))
        lines.append(f'    {_node(step.id)}{left}"{step.id}"{right}')
    for step in plan.steps:
        for dep in step.input_ids:
            lines.append(f"    {_node(dep)} --> {_node(step.id)}")
    return "\n".join(lines) + "\n"


def to_dot(plan: Plan) -> str:
    lines = [f'digraph "{plan.pipeline}" {{', "    rankdir=TB;", "    node [shape=box, fontname=Helvetica];"]
    for step in plan.steps:
        lines.append(f'    "{step.id}" [label="{step.id}"];')
    for step in plan.steps:
        for dep in step.input_ids:
            lines.append(f'    "{dep}" -> "{step.id}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node(step_id: str) -> str:
    return step_id.replace(".", "_").replace("-", "_")
