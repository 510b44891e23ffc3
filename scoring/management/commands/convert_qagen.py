from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Convert a fairseq BART QAGen checkpoint (the paper's checkpoint2.pt) with its GPT-2 BPE "
        "files and dict.txt into a transformers directory that QUALS_MODEL / quals_score --model "
        "load as is (tokenizer ids = the model's dictionary indices, QUALS settings included)."
    )

    def add_arguments(self, parser):
        parser.add_argument("checkpoint", type=Path, help="fairseq checkpoint, e.g. checkpoint2.pt")
        parser.add_argument(
            "--bpe-dir", required=True, type=Path, help="Folder with encoder.json and vocab.bpe."
        )
        parser.add_argument("--dict", type=Path, help="fairseq dict.txt (default: in --bpe-dir).")
        parser.add_argument("--output", required=True, type=Path, help="Directory to create.")
        parser.add_argument(
            "--dtype", choices=["float32", "float16"], default="float32", help="Stored weights."
        )
        parser.add_argument(
            "--separator", default=" strutConnector", help="Question/answer separator text."
        )
        parser.add_argument("--force", action="store_true", help="Replace a non-empty --output.")

    def handle(self, *args, **opts):
        from scoring.convert import ConversionError, convert_checkpoint

        try:
            converted = convert_checkpoint(
                opts["checkpoint"],
                opts["bpe_dir"],
                opts["output"],
                dict_path=opts["dict"],
                dtype=opts["dtype"],
                separator=opts["separator"],
                force=opts["force"],
            )
        except ConversionError as e:
            raise CommandError(str(e)) from e
        config = converted.config
        self.stdout.write(
            f"BART {config.encoder_layers}+{config.decoder_layers} layers, d_model "
            f"{config.d_model}, {converted.embedding_rows} embedding rows "
            f"({converted.dictionary_size} dictionary symbols); wrote {converted.output}"
        )
