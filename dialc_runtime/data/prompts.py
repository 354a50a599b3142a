"""Records → prompt text: dialogue transcripts, output-format hints, default templates, evolution prompts."""

from __future__ import annotations

import json
import re
from typing import Any

DEFAULT_SYSTEM = "You are a careful assistant for domain experts. Follow the task exactly."
DEFAULT_TEMPLATE = """Dialogue ({scenario}):
{dialogue}

Task: {instruction}
{output_format}"""
MAX_DIALOGUE_CHARS = 2400  # longer transcripts are cut (from the middle) to keep prompts short on CPU

EVOLVE_PROMPTS = {
    # Dial-insight / Evol-Instruct style operators; {instruction} is the task being evolved.
    "deepen": "Rewrite this task instruction so it requires deeper reasoning about the dialogue "
              "(causes, trade-offs, implications), staying answerable from the dialogue alone.\n"
              "Instruction: {instruction}",
    "add_constraint": "Rewrite this task instruction by adding one concrete constraint on the answer "
                      "(format, length, what to include or exclude). Keep it answerable from the dialogue.\n"
                      "Instruction: {instruction}",
    "concretize": "Rewrite this task instruction to be more specific to {scenario} conversations in "
                  "this domain, naming the concrete details to focus on.\nInstruction: {instruction}",
    "broaden": "Write a different but related task instruction of the same category ({category}) that a "
               "professional could ask about such a dialogue.\nInstruction: {instruction}",
}
EVOLVE_SCHEMA = {"type": "object", "properties": {"instruction": {"type": "string", "minLength": 10,
                                                                   "maxLength": 300}},
                 "required": ["instruction"], "additionalProperties": False}
PROPOSE_SCHEMA = {"type": "object", "properties": {"instruction": {"type": "string", "minLength": 10,
                                                                    "maxLength": 300}},
                  "required": ["instruction"], "additionalProperties": False}


def transcript(dialogue: dict[str, Any], limit: int = MAX_DIALOGUE_CHARS) -> str:
    """'Agent: …' / 'Customer: …' lines, cut in the middle when too long."""
    text = "\n".join(f"{t['role'].capitalize()}: {t['text']}" for t in dialogue["turns"])
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n[…]\n" + text[-half:]


def output_format(output: dict[str, Any]) -> str:
    """A one-line description of the required answer form, shown to the model."""
    kind = output.get("kind")
    if kind == "json":
        props = output["schema"].get("properties", {})
        fields = ", ".join(f'"{name}": {_type_hint(s)}' for name, s in props.items())
        return f"Answer with a JSON object only: {{{fields}}}. Use null when the dialogue does not say."
    if kind == "choice":
        return "Answer with exactly one of: " + ", ".join(output["options"]) + "."
    if kind == "regex":
        return f"Answer in the form matching /{output['pattern']}/."
    limit = int(output.get("max_chars", 2000))
    # the limit in words too (a model counts words better than characters), and a whole last sentence:
    # an answer that runs into its bound mid-sentence is truncated (retried, then quarantined)
    return (f"Answer in plain text, at most {limit} characters (about {max(1, limit // 6)} words); "
            "finish your last sentence within that limit.")


def _type_hint(schema: dict[str, Any]) -> str:
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    names = [t for t in types if t != "null"]
    nullable = "null" in types or None in schema.get("enum", ())
    if "enum" in schema:
        hint = "one of " + "/".join(str(v) for v in schema["enum"] if v is not None)
    else:
        hint = names[0] if names else "value"
    return hint + (" or null" if nullable else "")


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"\w+")


def fill(template: str, values: dict[str, Any]) -> str:
    """Plain `{name}` placeholders replaced by their values (unknown ones by ""), `{{` and `}}` by braces.

    Nothing else is interpreted: no conversion (`!r`), format spec (`:>9`), attribute or index, so record
    text can never drive Python's format machinery (the compiler refuses such templates; an older plan
    holding one fails here with ValueError)."""

    def replace(match: re.Match[str]) -> str:
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            return token[0]
        if name is None or not _NAME.fullmatch(name):
            raise ValueError(f"template placeholder {token!r}: only plain {{name}} placeholders are allowed")
        return str(values.get(name, ""))

    return _PLACEHOLDER.sub(replace, template)


def render_prompt(template: str | None, system: str | None, values: dict[str, Any]) -> list[dict[str, str]]:
    """Chat messages for one production prompt."""
    user = fill(template or DEFAULT_TEMPLATE, values)
    if template and "{output_format}" not in template:
        user = user.rstrip() + "\n" + values["output_format"]
    return [{"role": "system", "content": fill(system or DEFAULT_SYSTEM, values)},
            {"role": "user", "content": user.strip()}]


def evolve_messages(operator: str, override: str | None, task: dict[str, Any], scenario: str) -> list[dict[str, str]]:
    template = override or EVOLVE_PROMPTS[operator]
    body = fill(template, {"instruction": task["instruction"], "category": task["category"], "scenario": scenario})
    return [{"role": "system", "content": "You write task instructions for annotators. Reply in JSON."},
            {"role": "user", "content": body + '\nReply as {"instruction": "..."}.'}]


def propose_messages(dialogue: dict[str, Any], category: str, scenario_description: str) -> list[dict[str, str]]:
    body = (f"Here is a {scenario_description} dialogue:\n{transcript(dialogue, 1200)}\n\n"
            f"Propose one new {category.replace('_', ' ')} task instruction an agent could ask an assistant "
            "about dialogues like this one. It must be answerable from the dialogue alone.\n"
            'Reply as {"instruction": "..."}.')
    return [{"role": "system", "content": "You design tasks for training domain assistants. Reply in JSON."},
            {"role": "user", "content": body}]


def paraphrase_messages(instruction: str) -> list[dict[str, str]]:
    """One paraphrase of a task instruction (an expression variant), answered as {"instruction": …}."""
    return [{"role": "user", "content": "Paraphrase this task instruction, same meaning, different "
             f"wording:\n{instruction}\nReply as {{\"instruction\": \"...\"}}."}]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
