"""The lifecycle's transition table, derived from the models and compared with the spec's.

Every path moves a state through a transition the model declares (a row by calling it, a
set of rows by `move_set`; a bare `update(state=…)` is refused), so the declarations are
the whole table. `docs/lifecycle.md` holds the spec's table and diagram, copied from
`../shared/spec/lifecycle.md`, and the additions made by later issues, each with why: the
declarations must be exactly the spec's plus those additions.

The copy is compared with the spec where the spec is checked out beside the repository,
and otherwise with the digest it was copied at, so no test here depends on it being there.
"""

import hashlib
import re
from pathlib import Path

import pytest
from django.conf import settings
from django_fsm import FSMFieldMixin

from refunds.models import Payout, RefundRequest

DOCS = Path(settings.BASE_DIR) / "docs" / "lifecycle.md"
SPEC = Path(settings.BASE_DIR).parent / "shared" / "spec" / "lifecycle.md"
MACHINES = {"RefundRequest": RefundRequest, "Payout": Payout}


# --- reading the documents ------------------------------------------------------------------


def _section(text: str, machine: str) -> str:
    """The `## <machine> …` section of a lifecycle document, up to the next `## ` heading."""
    match = re.search(rf"^## {machine}\b.*?(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no '## {machine}' section"
    return match.group(0)


def copied_parts(text: str) -> dict[str, str]:
    """What docs/lifecycle.md copies from the spec: RefundRequest's table, Payout's diagram."""
    table = [line for line in _section(text, "RefundRequest").splitlines() if line.startswith("|")]
    diagram = re.search(r"^```\n.*?^```$", _section(text, "Payout"), re.M | re.S)
    assert table and diagram, "the RefundRequest table or the Payout diagram is missing"
    return {"RefundRequest": "\n".join(table), "Payout": diagram.group(0)}


def digest(parts: dict[str, str]) -> str:
    return hashlib.sha256("\n\n".join(parts[m] for m in MACHINES).encode()).hexdigest()


def _state(name: str, machine: str, where: str) -> str:
    name = name.strip()
    assert name in MACHINES[machine].State.values, f"{where} names {name!r}, which is not a {machine} state"
    return name


def table_pairs(table: str) -> set[tuple[str, str]]:
    """(from, to) of each row of the spec's RefundRequest table. A row may list several
    sources ("a, b") and several targets ("approved / rejected"); a target may carry a
    remark ("awaiting_customer, alternative offered")."""
    header, rule, *rows = table.splitlines()
    assert [c.strip() for c in header.strip("|").split("|")] == ["from", "transition", "to", "who"], header
    pairs = set()
    for row in rows:
        source, _transition, target, _who = (c.strip() for c in row.strip().strip("|").split("|"))
        for s in source.split(","):
            for t in target.split("/"):
                pairs.add((_state(s, "RefundRequest", row), _state(t.split(",")[0], "RefundRequest", row)))
    return pairs


_ARROW = re.compile(r"(?P<branch>└)?──(?:[^─▶]+──)?▶")
_WORD = re.compile(r"[a-z][a-z_]*")


def diagram_pairs(diagram: str, machine: str) -> set[tuple[str, str]]:
    """(from, to) of each arrow of a state diagram such as the spec's Payout one.

    `a ──label──▶ b` goes from the state left of the arrow to the one right of it. A branch
    `└──label──▶ b` goes from the state it hangs from: up its column, through the `│`s."""
    lines = diagram.strip("`\n").splitlines()

    def states(line: str) -> list[tuple[int, int, str]]:
        arrows = [a.span() for a in _ARROW.finditer(line)]
        return [
            (w.start(), w.end(), _state(w.group(), machine, f"the diagram's line {line.strip()!r}"))
            for w in _WORD.finditer(line)
            if not any(lo <= w.start() < hi for lo, hi in arrows)
        ]

    pairs = set()
    for i, line in enumerate(lines):
        on_line = states(line)
        for arrow in _ARROW.finditer(line):
            targets = [name for start, _, name in on_line if start >= arrow.end()]
            assert targets, f"an arrow to nowhere in {line!r}"
            if arrow.group("branch"):
                column, source = arrow.start(), None
                for above in reversed(lines[:i]):
                    hit = [name for start, end, name in states(above) if start <= column < end]
                    if hit:
                        source = hit[0]
                        break
                    assert above[column : column + 1] == "│", f"the branch at column {column} of {line!r} hangs from nothing"
            else:
                sources = [name for _, end, name in on_line if end <= arrow.start()]
                source = sources[-1] if sources else None
            assert source, f"an arrow from nowhere in {line!r}"
            pairs.add((source, targets[0]))
    return pairs


def spec_pairs(parts: dict[str, str], machine: str) -> set[tuple[str, str]]:
    if machine == "RefundRequest":
        return table_pairs(parts[machine])
    return diagram_pairs(parts[machine], machine)


def additions(text: str) -> list[dict[str, str]]:
    """The rows of docs/lifecycle.md's "Added by later issues" table."""
    section = re.search(r"^## Added by later issues\n.*?(?=^## |\Z)", text, re.M | re.S)
    assert section, "docs/lifecycle.md has no '## Added by later issues' section"
    header, _rule, *rows = [line for line in section.group(0).splitlines() if line.startswith("|")]
    names = [c.strip() for c in header.strip("|").split("|")]
    assert names == ["machine", "from", "to", "transition", "why"], header
    return [dict(zip(names, (c.strip() for c in row.strip("|").split("|")), strict=True)) for row in rows]


# --- reading the models ---------------------------------------------------------------------


def declared(model) -> dict[tuple[str, str], set[str]]:
    """(from, to) → the names of the model's transitions that make that move."""
    (field,) = [f for f in model._meta.concrete_fields if isinstance(f, FSMFieldMixin)]
    table: dict[tuple[str, str], set[str]] = {}
    for t in field.get_all_transitions(model):
        assert t.source in model.State.values and t.target in model.State.values, f"{t.name}: {t.source} → {t.target}"
        table.setdefault((t.source, t.target), set()).add(t.name)
    return table


DOC_TEXT = DOCS.read_text()
PARTS = copied_parts(DOC_TEXT)
ADDITIONS = additions(DOC_TEXT)


# --- the tests ------------------------------------------------------------------------------


def test_the_docs_copy_is_still_the_spec_s_text():
    recorded = re.search(r"digest sha256 `([0-9a-f]{64})`", DOC_TEXT)
    assert recorded, "docs/lifecycle.md does not say the digest its copy was taken at"
    if SPEC.exists():
        spec = copied_parts(SPEC.read_text())
        assert PARTS == spec, (
            f"{SPEC} changed since docs/lifecycle.md copied it: copy its table and diagram again, "
            f"with the date and digest sha256 `{digest(spec)}`, and go through the additions"
        )
    # Without the spec (a clone on its own), the copy is what was copied: nobody edited it to fit.
    assert digest(PARTS) == recorded.group(1), (
        f"docs/lifecycle.md's copy of the spec no longer hashes to the digest it records "
        f"(now sha256 `{digest(PARTS)}`): re-copy it from the spec instead of editing it"
    )


@pytest.mark.parametrize("machine", MACHINES)
def test_the_model_declares_exactly_the_spec_s_transitions_and_the_documented_additions(machine):
    have = set(declared(MACHINES[machine]))
    spec = spec_pairs(PARTS, machine)
    added = {(a["from"], a["to"]) for a in ADDITIONS if a["machine"] == machine}

    undocumented, missing, stale = have - spec - added, spec - have, added - have
    assert not undocumented, (
        f"{machine} declares {_named(undocumented)}: neither in the spec nor in docs/lifecycle.md's additions"
    )
    assert not missing, f"{machine} does not declare the spec's {_named(missing)}"
    assert not stale, f"docs/lifecycle.md adds {_named(stale)}, which {machine} does not declare"


def _named(pairs) -> str:
    return ", ".join(f"{source} → {target}" for source, target in sorted(pairs))


def test_each_addition_is_declared_as_documented_with_its_reason_and_not_yet_in_the_spec():
    assert ADDITIONS, "the outcome_unknown transitions of the payouts are additions to the spec"
    for a in ADDITIONS:
        assert a["machine"] in MACHINES, a
        model = MACHINES[a["machine"]]
        pair = (_state(a["from"], a["machine"], "an addition"), _state(a["to"], a["machine"], "an addition"))
        assert a["transition"] in declared(model).get(pair, set()), f"{a['machine']}.{a['transition']} is not {pair}"
        assert pair not in spec_pairs(PARTS, a["machine"]), f"the spec has {pair} now: remove it from the additions"
        assert len(a["why"]) > 40, f"say why {pair} was added"
    rows = [(a["machine"], a["from"], a["to"]) for a in ADDITIONS]
    assert len(rows) == len(set(rows)), "an addition is listed twice"


@pytest.mark.parametrize("machine", MACHINES)
def test_every_state_of_the_model_is_in_the_table(machine):
    pairs = spec_pairs(PARTS, machine) | {(a["from"], a["to"]) for a in ADDITIONS if a["machine"] == machine}
    assert {s for pair in pairs for s in pair} == set(MACHINES[machine].State.values)


def test_the_terminal_states_of_a_request_are_exactly_those_it_can_not_leave():
    sources = {source for source, _ in declared(RefundRequest)}
    assert set(RefundRequest.TERMINAL) == set(RefundRequest.State.values) - sources


# --- the readers themselves, on documents that are wrong on purpose -------------------------


def test_the_diagram_reader_follows_a_branch_up_its_column():
    diagram = "```\npending_approval ──approve──▶ approved\n   │\n   └──void──▶ voided\n```"
    assert diagram_pairs(diagram, "Payout") == {("pending_approval", "approved"), ("pending_approval", "voided")}


@pytest.mark.parametrize(
    "table",
    [
        "| from | transition | to | who |\n|---|---|---|---|\n| submitted | evaluate | aproved | system |",
        "| from | transition | to | who |\n|---|---|---|---|\n| submited | evaluate | approved | system |",
    ],
    ids=["unknown target", "unknown source"],
)
def test_a_state_the_model_does_not_have_in_the_table_fails(table):
    with pytest.raises(AssertionError, match="not a RefundRequest state"):
        table_pairs(table)


def test_a_state_the_model_does_not_have_in_the_diagram_fails():
    with pytest.raises(AssertionError, match="not a Payout state"):
        diagram_pairs("```\npending_approval ──approve──▶ accepted\n```", "Payout")
