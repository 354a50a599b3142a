"""An evaluation's `domain = gold(NAME)` → the typed GoldSet and the PromptFormat its items are asked in."""

from __future__ import annotations

from collections.abc import Callable

from dialc.ir import IR, DeclIR, RefIR
from dialc.plan import FieldMapping, GoldSet, PromptFormat, Scenario, TaskSpec
from dialc.testsets import testset_mapping, testset_tasks


def gold_set(ir: IR, testset: DeclIR, path: Callable[[str], str], task: Callable[[DeclIR], TaskSpec]) -> GoldSet:
    """The test set with its mapping resolved (own fields, else its `like` source's) and its tasks' specs."""
    mapping = testset_mapping(ir, testset)
    return GoldSet(name=testset.name, path=path(testset.fields["path"]),
                   format="csv" if mapping.format == "csv" else "jsonl",
                   fields=FieldMapping(**mapping.fields), roles=mapping.roles, pii_scrub=mapping.pii_scrub,
                   references=path(testset.fields["references"]), tasks=[task(t) for t in testset_tasks(ir, testset)])


def prompt_format(ir: IR, finetune: DeclIR) -> PromptFormat:
    """The template and system prompt of the sample the fine-tune's data was drawn by, each expression axis at
    its most weighted value: the gold items are asked the way the training prompts were."""
    return sample_prompt_format(ir, _training_sample(ir, finetune))


def sample_prompt_format(ir: IR, sample: DeclIR | None) -> PromptFormat:
    """The template and system prompt of a sample, each expression axis at its most weighted value."""
    scenarios = {e.name: Scenario(description=e.description, weight=e.weight)
                 for s in ir.of_kind("scenarios") for e in s.entries}
    if sample is None:
        return PromptFormat(scenarios=scenarios)
    expression: dict[str, str] = {}
    for ref in sample.fields.get("from", []):
        for decl in ir.find(ref.name, ("expressions",)):
            for axis, values in decl.fields.items():
                if isinstance(values, dict) and values:
                    expression[axis] = max(values.items(), key=lambda kv: kv[1])[0]
    return PromptFormat(template=sample.fields.get("template"), system=sample.fields.get("system"),
                        expression=expression, scenarios=scenarios)


def _training_sample(ir: IR, finetune: DeclIR) -> DeclIR | None:
    """finetune.data → quality.from → label.from: the sample its training prompts came from."""
    chain = (("data", ("quality",)), ("from", ("label",)), ("from", ("sample",)))
    decl: DeclIR | None = finetune
    for field, kinds in chain:
        ref = decl.fields.get(field) if decl is not None else None
        found = ir.find(ref.name, kinds) if isinstance(ref, RefIR) else []
        decl = found[0] if found else None
    return decl
