from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

MAX_ERRORS = 50


class Command(BaseCommand):
    help = (
        'Score {"id", "source", "summary"} JSONL lines with QUALS outside the web app; writes '
        '{"id", "quals", "reason", "pairs"} lines. Consecutive lines with the same source share '
        "its encoding."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, type=Path, help="Checkpoint directory.")
        parser.add_argument("--input", required=True, type=Path)
        parser.add_argument("--output", required=True, type=Path)
        parser.add_argument("--separator", default="<sep>")
        parser.add_argument("--input-prefix", default="")
        parser.add_argument("--max-source-tokens", type=int, default=1024)
        parser.add_argument("--device", default="cpu")
        parser.add_argument("--dtype", default="float32")
        parser.add_argument("--num-beams", type=int, default=60)
        parser.add_argument("--no-details", action="store_true", help="Omit per-pair details.")

    def handle(self, *args, **opts):
        from scoring.quals import QualsConfig, QualsConfigError, encode_source, load_qagen
        from scoring.quals import quals_score as score

        rows = read_rows(opts["input"])
        config = QualsConfig(
            model_dir=str(opts["model"]),
            separator=opts["separator"],
            input_prefix=opts["input_prefix"],
            max_source_tokens=opts["max_source_tokens"],
            device=opts["device"],
            dtype=opts["dtype"],
            num_beams=opts["num_beams"],
            num_beam_groups=opts["num_beams"],
        )
        try:
            qagen = load_qagen(config)
        except QualsConfigError as e:
            raise CommandError(str(e)) from e
        scored = 0
        encoded, encoded_source = None, None
        with opts["output"].open("w", encoding="utf-8") as out:
            for row in tqdm(rows, desc="QUALS", unit="summary", file=self.stderr._out):
                if row["source"] != encoded_source:
                    encoded, encoded_source = encode_source(qagen, row["source"]), row["source"]
                result = score(qagen, row["source"], row["summary"], encoded)
                line = {"id": row["id"], "quals": result.value, "reason": result.reason}
                if not opts["no_details"]:
                    line["pairs"] = [vars(p) for p in result.pairs]
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                scored += result.value is not None
        self.stdout.write(f"{len(rows)} summaries, {scored} with a score; wrote {opts['output']}")


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
        shown = errors[:MAX_ERRORS] + (
            [f"... and {len(errors) - MAX_ERRORS} more"] if len(errors) > MAX_ERRORS else []
        )
        raise CommandError(f"{path}: nothing scored:\n" + "\n".join(shown))
    return rows


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
