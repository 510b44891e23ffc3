from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

MAX_ERRORS = 50
# A summary without a usable question-answer pair in `lines` output: float("nan") reads it back
# and the line stays aligned with the inputs; its reason goes to stderr.
NO_SCORE = "nan"


class Command(BaseCommand):
    help = (
        'Score summaries with QUALS outside the web app. Input: {"id", "source", "summary"} '
        "JSONL (--input), or the reference's line-aligned plain-text files (--source and "
        '--summaries, like its test.source and test.target.hypo). Output: {"id", "quals", '
        '"reason", "pairs"} JSONL, or with --output-format lines one score per input line '
        f'("{NO_SCORE}" where there is none, the reason on stderr). Consecutive lines with the '
        "same source share its encoding."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, type=Path, help="Checkpoint directory.")
        parser.add_argument("--input", type=Path, help="JSONL with id, source, summary.")
        parser.add_argument("--source", type=Path, help="One source document per line.")
        parser.add_argument("--summaries", type=Path, help="One summary per line, aligned.")
        parser.add_argument("--output", required=True, type=Path)
        parser.add_argument("--output-format", choices=["jsonl", "lines"], default="jsonl")
        parser.add_argument("--separator", default="<sep>")
        parser.add_argument("--input-prefix", default="")
        parser.add_argument("--max-source-tokens", type=int, default=1024)
        parser.add_argument("--device", default="cpu")
        parser.add_argument("--dtype", default="float32")
        parser.add_argument("--num-beams", type=int, default=60)
        parser.add_argument("--no-details", action="store_true", help="Omit per-pair details.")
        parser.add_argument(
            "--generation-batch-size",
            type=int,
            default=1,
            help="Summaries per beam search (same scores, faster on a GPU).",
        )

    def handle(self, *args, **opts):
        from scoring.quals import QualsConfig, QualsConfigError, load_qagen

        rows = read_input(opts)
        if not opts["output"].parent.is_dir():
            raise CommandError(f"the folder for --output does not exist: {opts['output'].parent}")
        config = QualsConfig(
            model_dir=str(opts["model"]),
            separator=opts["separator"],
            input_prefix=opts["input_prefix"],
            max_source_tokens=opts["max_source_tokens"],
            device=opts["device"],
            dtype=opts["dtype"],
            num_beams=opts["num_beams"],
            num_beam_groups=opts["num_beams"],
            generation_batch_size=opts["generation_batch_size"],
        )
        if opts["generation_batch_size"] < 1:
            raise CommandError("--generation-batch-size must be at least 1")
        try:
            qagen = load_qagen(config)
        except QualsConfigError as e:
            raise CommandError(str(e)) from e
        lines = (self.output_line(row, result, opts) for row, result in self.scored(qagen, rows))
        scored = write_atomically(opts["output"], lines)
        self.stdout.write(f"{len(rows)} summaries, {scored} with a score; wrote {opts['output']}")

    def scored(self, qagen, rows):
        from scoring import quals

        encoded, encoded_source = None, None
        size = qagen.config.generation_batch_size
        progress = tqdm(total=len(rows), desc="QUALS", unit="summary", file=self.stderr._out)
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            found = generated_candidates(qagen, [row["summary"] for row in chunk])
            for row, candidates in zip(chunk, found, strict=True):
                if row["source"] != encoded_source:
                    encoded, encoded_source = (
                        quals.encode_source(qagen, row["source"]),
                        row["source"],
                    )
                yield (
                    row,
                    quals.score_candidates(
                        qagen, row["source"], row["summary"], candidates, encoded
                    ),
                )
                progress.update()
        progress.close()

    def output_line(self, row: dict, result, opts) -> tuple[str, bool]:
        has_score = result.value is not None
        if opts["output_format"] == "lines":
            if not has_score:
                self.stderr.write(f"id {row['id']}: no score: {result.reason}")
            return (repr(result.value) if has_score else NO_SCORE), has_score
        line = {"id": row["id"], "quals": result.value, "reason": result.reason}
        if not opts["no_details"]:
            line["pairs"] = [vars(p) for p in result.pairs]
        return json.dumps(line, ensure_ascii=False), has_score


def generated_candidates(qagen, summaries: list[str]) -> list:
    """Generated candidates per summary: one beam search each, or batched ones (same results)."""
    from scoring import quals

    if len(summaries) == 1:
        return [quals.generate_candidates(qagen, summaries[0])]
    return quals.generate_candidates_batch(qagen, summaries)


def write_atomically(path: Path, lines) -> int:
    """Write (line, has_score) pairs to a temporary file, moved into place once all are done."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    scored = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for line, has_score in lines:
                out.write(line + "\n")
                scored += has_score
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return scored


def read_input(opts) -> list[dict]:
    if opts["input"] and (opts["source"] or opts["summaries"]):
        raise CommandError("give either --input or --source with --summaries, not both")
    if opts["input"]:
        return read_rows(opts["input"])
    if not (opts["source"] and opts["summaries"]):
        raise CommandError("give --input FILE.jsonl, or both --source FILE and --summaries FILE")
    return read_aligned(opts["source"], opts["summaries"])


def read_aligned(source_path: Path, summaries_path: Path) -> list[dict]:
    """Line-aligned plain text, as the reference reads it: line i of one goes with line i of
    the other; ids are line numbers (1-based). Everything is checked before anything is scored."""
    sources, summaries = read_lines(source_path), read_lines(summaries_path)
    if len(sources) != len(summaries):
        raise CommandError(
            f"{source_path} has {len(sources)} lines but {summaries_path} has "
            f"{len(summaries)}: they must be line-aligned; nothing scored"
        )
    errors = [
        f"line {number}: empty {name}"
        for number, (source, summary) in enumerate(zip(sources, summaries, strict=True), start=1)
        for name, text in (("source", source), ("summary", summary))
        if not text.strip()
    ]
    if not sources:
        errors.append("the files hold no line to score")
    if errors:
        raise CommandError(f"{source_path}, {summaries_path}: nothing scored:\n" + shown(errors))
    return [
        {"id": number, "source": source, "summary": summary}
        for number, (source, summary) in enumerate(zip(sources, summaries, strict=True), start=1)
    ]


def read_lines(path: Path) -> list[str]:
    """Lines as Python's `for line in file` gives them (\\n, \\r\\n or \\r), newline removed."""
    try:
        with path.open(encoding="utf-8") as f:
            return [line.removesuffix("\n") for line in f]
    except (OSError, UnicodeDecodeError) as e:
        raise CommandError(f"cannot read {path} as UTF-8 text: {e}; nothing scored") from e


def read_rows(path: Path) -> list[dict]:
    """Read and check the whole input first, so a bad line stops nothing halfway."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CommandError(f"cannot read {path}: {e}") from e
    rows, errors = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except (ValueError, RecursionError) as e:
            errors.append(f"line {number}: not valid JSON: {e}")
            continue
        bad = row_problems(row)
        if bad:
            errors.append(f"line {number}: {bad}")
            continue
        rows.append(row)
    if not rows and not errors:
        errors.append("the file holds no line to score")
    if errors:
        raise CommandError(f"{path}: nothing scored:\n" + shown(errors))
    return rows


def shown(errors: list[str]) -> str:
    more = [f"... and {len(errors) - MAX_ERRORS} more"] if len(errors) > MAX_ERRORS else []
    return "\n".join(errors[:MAX_ERRORS] + more)


def row_problems(row) -> str:
    if not isinstance(row, dict):
        return "expected a JSON object"
    missing = [k for k in ("id", "source", "summary") if k not in row]
    empty = [k for k in ("source", "summary") if k in row and not _text(row[k])]
    if missing or empty:
        return f"missing or empty {', '.join(missing + empty)}"
    return ""


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())
