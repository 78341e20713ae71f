"""End-to-end tests of the maintainer commands `python -m bot validate`, `facts` and `schema`, run as
subprocesses exactly as a maintainer types them: what they print, where, and the exit status. Includes the
issue's "done when" scenario: five typical mistakes made in a copy of the shipped knowledge are each
reported once, at the right file and line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from knowledge_fixtures import PROJECT_ROOT, copy_shipped, edited, line_of, write_project

from bot.knowledge.facts import schema_text
from bot.knowledge.model import Fact


def run_bot(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") and k != "TELEGRAM_BOT_TOKEN"}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text("knowledge_dir: knowledge\ncorpus_dir: corpus\n", encoding="utf-8")
    return config


def yaml_facts(knowledge_dir: Path) -> list[tuple[str, dict]]:
    """(file name, fact as plain YAML data) for every fact, in load order, read independently of bot.knowledge.facts."""
    out = []
    for path in sorted(knowledge_dir.glob("*.yaml")):
        for fact in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("facts") or []:
            out.append((path.name, fact))
    return out


# --- validate -----------------------------------------------------------------------------------------------


def test_validate_prints_one_line_of_counts_on_success(tmp_path: Path) -> None:
    write_project(tmp_path)
    result = run_bot("validate", "--knowledge", "knowledge", "--corpus", "corpus", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "ok: 3 facts (exchange 1, trade 1, quote 1), 4 entities, 2 articles\n",
        "",
    )


def test_validate_prints_every_problem_sorted_then_a_summary(tmp_path: Path) -> None:
    files = edited("trade.yaml", 'date: "2024"', 'date: "2024-00"')
    files = edited("exchanges.yaml", "speaker: leader-a", "speaker: leadr-a", files)
    write_project(tmp_path, files)
    result = run_bot("validate", "--knowledge", "knowledge", "--corpus", "corpus", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"knowledge/exchanges.yaml:{line_of(files['exchanges.yaml'], 'speaker:')}:5: foundation-quote-2023: speaker "
        "'leadr-a' is not an entity id (did you mean 'leader-a'?): use an id from the entities in aliases.yaml or "
        "add the entity there",
        f"knowledge/trade.yaml:{line_of(files['trade.yaml'], 'date:')}:5: record-trade-2024: date '2024-00' is not a "
        "real date (month must be in 1..12): use YYYY, YYYY-MM or YYYY-MM-DD with a real month and day",
    ]
    assert result.stderr == "2 problems in 2 files; fix them and run `python -m bot validate` again\n"


def test_validate_takes_its_folders_from_the_config(tmp_path: Path) -> None:
    write_project(tmp_path)
    config = write_config(tmp_path)
    result = run_bot("--config", config, "validate", cwd=PROJECT_ROOT)
    assert (result.returncode, result.stdout) == (
        0,
        "ok: 3 facts (exchange 1, trade 1, quote 1), 4 entities, 2 articles\n",
    )
    config.write_text("knowledge_dir: knowledge\nno_such_setting: 1\n", encoding="utf-8")
    result = run_bot("--config", config, "validate", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("config error: unknown config key no_such_setting")


def test_shipped_knowledge_validates_from_the_command_line() -> None:
    result = run_bot("validate", cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.fullmatch(r"ok: (\d+) facts \((.+)\), (\d+) entities, 5 articles\n", result.stdout)
    assert match, result.stdout
    facts = yaml_facts(PROJECT_ROOT / "knowledge")
    assert int(match[1]) == len(facts)
    per_kind = dict(part.split(" ") for part in match[2].split(", "))
    assert {k: int(v) for k, v in per_kind.items()} == {
        kind: sum(1 for _, f in facts if f["kind"] == kind) for kind in per_kind
    }
    assert sum(map(int, per_kind.values())) == len(facts)


# --- the "done when" scenario ------------------------------------------------------------------------


def _mentions(texts: dict[str, str], fact_id: str) -> int:
    token = re.compile(rf"(?<![a-z0-9-]){re.escape(fact_id)}(?![a-z0-9-])")
    return sum(len(token.findall(text)) for text in texts.values())


def _span(text: str, fact_id: str) -> tuple[int, int]:
    """Character range of the fact written as `- id: <fact_id>` up to the next `- id:` (or the end)."""
    found = re.search(rf"^ *- id: {re.escape(fact_id)}[ \t]*$", text, re.M)
    assert found, f"fact {fact_id} is not written as '- id: {fact_id}'"
    following = re.compile(r"^ *- id: ", re.M).search(text, found.end())
    return found.start(), following.start() if following else len(text)


def _line_in_fact(text: str, fact_id: str, pattern: str) -> int:
    start, end = _span(text, fact_id)
    found = re.compile(pattern, re.M).search(text, start, end)
    assert found, f"{fact_id} has no {pattern}"
    return text.count("\n", 0, found.start()) + 1


def _sub_in_fact(text: str, fact_id: str, pattern: str, replacement: str) -> str:
    start, end = _span(text, fact_id)
    block, count = re.compile(pattern, re.M).subn(replacement, text[start:end], count=1)
    assert count == 1, f"{fact_id} has no {pattern}"
    return text[:start] + block + text[end:]


def test_five_mistakes_in_the_shipped_knowledge_are_each_reported_at_their_line(tmp_path: Path) -> None:
    knowledge_dir, _ = copy_shipped(tmp_path)
    texts = {p.name: p.read_text(encoding="utf-8") for p in sorted(knowledge_dir.glob("*.yaml"))}
    facts = [
        (file, f) for file, f in yaml_facts(knowledge_dir) if re.search(rf"- id: {f['id']}\s*$", texts[file], re.M)
    ]
    unreferenced = [(file, f) for file, f in facts if _mentions(texts, f["id"]) == 1]
    taken: set[str] = set()

    def pick(candidates: list[tuple[str, dict]], last: bool = False) -> tuple[str, dict]:
        chosen = [c for c in candidates if c[1]["id"] not in taken]
        assert chosen, "the shipped knowledge is too small for this scenario"
        file, fact = chosen[-1] if last else chosen[0]
        taken.add(fact["id"])
        return file, fact

    def long_word(fact: dict) -> str | None:
        return next((w for w in re.findall(r"[A-Za-z]{5,}", fact.get("words") or "")), None)

    quote_file, quote = pick([(fl, f) for fl, f in facts if f["kind"] == "quote" and long_word(f)])
    source_file, sourced = pick([(fl, f) for fl, f in facts if not f.get("words")])
    date_file, dated = pick(facts)
    no_id_file, no_id = pick(unreferenced)
    dup_file, dup = pick(unreferenced, last=True)
    first_file, first = next((fl, f) for fl, f in facts if f["id"] not in (no_id["id"], dup["id"]))
    assert facts.index((first_file, first)) < facts.index((dup_file, dup))

    # (5) a quote's words altered by one word
    word = long_word(quote)
    text = texts[quote_file]
    words_at = text.index("words:", *_span(text, quote["id"]))
    texts[quote_file] = text[:words_at] + re.sub(rf"\b{word}\b", "altered", text[words_at:], count=1)
    # (4) a source citing an unknown article
    texts[source_file] = _sub_in_fact(texts[source_file], sourced["id"], r"article: \S+", "article: no-such-article")
    # (2) a bad date
    texts[date_file] = _sub_in_fact(texts[date_file], dated["id"], r"^( +)date: .*$", r'\1date: "2023-13"')
    # (3) a duplicate id: a later fact takes the id of an earlier one
    texts[dup_file] = _sub_in_fact(
        texts[dup_file], dup["id"], r"- id: \S+", f"- id: {first['id']}  # mutation: duplicate id"
    )
    # (1) a fact with its id removed: `- id: x` + `  kind: y` become `- kind: y`
    lines = texts[no_id_file].split("\n")
    at = next(i for i, line in enumerate(lines) if re.fullmatch(rf" *- id: {no_id['id']}\s*", line))
    assert re.match(r" +[a-z_]+: \S", lines[at + 1]), lines[at + 1]
    lines[at : at + 2] = [lines[at].split("- id:")[0] + "- " + lines[at + 1].strip() + "  # mutation: id removed"]
    texts[no_id_file] = "\n".join(lines)

    for name, text in texts.items():
        (knowledge_dir / name).write_text(text, encoding="utf-8")
    expected = {
        (no_id_file, line_of(texts[no_id_file], "# mutation: id removed"), "-", "missing required field 'id'"),
        (date_file, _line_in_fact(texts[date_file], dated["id"], r"^ +date:"), dated["id"], "date '2023-13' is not"),
        (
            dup_file,
            line_of(texts[dup_file], "# mutation: duplicate id"),
            first["id"],
            f"duplicate fact id '{first['id']}': the first is at knowledge/{first_file}:",
        ),
        (
            source_file,
            line_of(texts[source_file], "article: no-such-article"),
            sourced["id"],
            "sources[0].article 'no-such-article' is not in the corpus",
        ),
        (
            quote_file,
            _line_in_fact(texts[quote_file], quote["id"], r"^ +words:"),
            quote["id"],
            "words are not verbatim",
        ),
    }

    result = run_bot("validate", "--knowledge", "knowledge", "--corpus", "corpus", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 5, result.stdout
    found = set()
    for line in lines:
        match = re.fullmatch(r"knowledge/([a-z_-]+\.yaml):(\d+):\d+: (\S+): (.*)", line)
        assert match, line
        hit = next((e for e in expected if e[:3] == (match[1], int(match[2]), match[3])), None)
        assert hit, f"unexpected problem: {line}\nexpected: {sorted(expected)}"
        assert match[4].startswith(hit[3]), line
        found.add(hit)
    assert found == expected
    assert lines == sorted(lines, key=lambda ln: (ln.split(":")[0], int(ln.split(":")[1])))
    assert re.fullmatch(r"5 problems in \d files; fix them and run `python -m bot validate` again\n", result.stderr)


# --- facts ----------------------------------------------------------------------------------------------------


def test_facts_json_lists_every_shipped_fact_with_its_sources() -> None:
    result = run_bot("facts", "--json", cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    written = [fact for _, fact in yaml_facts(PROJECT_ROOT / "knowledge")]
    assert [f["id"] for f in listed] == [f["id"] for f in written]
    for out, fact in zip(listed, written, strict=True):
        assert set(out) == set(Fact.model_fields)
        assert out["sources"] == [{"article": s["article"], "excerpt": s["excerpt"]} for s in fact["sources"]]
        assert (out["kind"], out["date"], out["text"]) == (fact["kind"], fact["date"], fact["text"])
        assert (out["speaker"], out["words"]) == (fact.get("speaker"), fact.get("words"))


def test_facts_lists_id_date_and_title(tmp_path: Path) -> None:
    write_project(tmp_path)
    result = run_bot("--config", write_config(tmp_path), "facts", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [line.split(None, 2) for line in result.stdout.splitlines()] == [
        ["exchange-2023", "2023-12-31", "New Year exchange of 2023"],
        ["foundation-quote-2023", "2023-12-31", "The foundation became stronger"],
        ["record-trade-2024", "2024", "Record trade in 2024"],
    ]


def test_facts_refuses_invalid_knowledge_and_keeps_stdout_clean(tmp_path: Path) -> None:
    files = edited("trade.yaml", "kind: trade", "kind: trades")
    write_project(tmp_path, files)
    result = run_bot("--config", write_config(tmp_path), "facts", "--json", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    line = line_of(files["trade.yaml"], "kind: trades")
    assert result.stderr.splitlines()[0].startswith(f"knowledge/trade.yaml:{line}:5: record-trade-2024: kind 'trades'")
    assert result.stderr.splitlines()[-1] == "1 problem in 1 file; fix them and run `python -m bot validate` again"


# --- schema ---------------------------------------------------------------------------------------------------


def test_schema_check_write_and_check_again(tmp_path: Path) -> None:
    write_project(tmp_path)
    config = write_config(tmp_path)
    target = tmp_path / "knowledge" / "schema.json"

    missing = run_bot("--config", config, "schema", "--check", cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (
        1,
        "knowledge/schema.json is missing: run `python -m bot schema` and commit it\n",
    )
    written = run_bot("--config", config, "schema", cwd=tmp_path)
    assert (written.returncode, written.stdout) == (0, "wrote knowledge/schema.json\n")
    assert target.read_text(encoding="utf-8") == schema_text()
    assert run_bot("--config", config, "schema", "--check", cwd=tmp_path).returncode == 0

    target.write_text(schema_text().replace('"Facts"', '"Fact list"'), encoding="utf-8")
    stale = run_bot("--config", config, "schema", "--check", cwd=tmp_path)
    assert (stale.returncode, stale.stderr) == (
        1,
        "knowledge/schema.json is out of date: run `python -m bot schema` and commit it\n",
    )
