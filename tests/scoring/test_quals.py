"""QUALS on a tiny random QAGen: unit tests, and fast paths checked against slow references."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from scoring import quals
from scoring.quals import QAPair, QualsConfig, QualsConfigError

from .qagen_fixture import build_qagen_dir

DOCUMENT = (
    "The mayor of Springfield opened a new bridge over the river on Monday. "
    "The council voted to close the old library in March after a long debate. "
    "Heavy rain flooded the main road and three schools stayed closed."
)
SUMMARY = "The mayor of Springfield opened a new bridge on Monday."
OTHER_SUMMARY = "The council closed a bridge over the river in March."
QA = [
    ("Who opened a new bridge?", "The mayor of Springfield"),
    ("When did the mayor open the bridge?", "on Monday"),
    ("What did the mayor open?", "a new bridge"),
    ("Who opened the bridge on Monday?", "The mayor"),
]


@pytest.fixture(scope="session")
def qagen_dir(tmp_path_factory):
    return build_qagen_dir(tmp_path_factory.mktemp("qagen"))


def small_config(qagen_dir, **overrides) -> QualsConfig:
    # Few beams and tokens: generation stays well under a second on two CPU cores.
    settings = {"num_beams": 4, "num_beam_groups": 2, "min_new_tokens": 2, "max_new_tokens": 10}
    return QualsConfig(model_dir=str(qagen_dir), **{**settings, **overrides})


@pytest.fixture(scope="session")
def qagen(qagen_dir):
    return quals.load_qagen(small_config(qagen_dir))


def explicit_pairs(qagen, qa=QA) -> list[QAPair]:
    return [quals.make_pair(qagen, q, a, -float(i)) for i, (q, a) in enumerate(qa)]


def pair(question: str, answer: str, unnormalised_score: float) -> QAPair:
    return QAPair(question, answer, (5, 2), unnormalised_score)


class TestSplitPair:
    def test_it_splits_at_one_separator_keeping_the_raw_text(self):
        assert quals.split_pair("Who won? <sep> the team", "<sep>") == ("Who won? ", " the team")

    def test_it_rejects_text_without_separator(self):
        assert quals.split_pair("Who won? the team", "<sep>") is None

    def test_it_rejects_more_than_one_separator(self):
        assert quals.split_pair("Who<sep> won?<sep> the team", "<sep>") is None

    def test_it_accepts_a_plain_text_separator(self):
        text = "Who opened it? strutConnector The mayor"
        assert quals.split_pair(text, " strutConnector") == ("Who opened it?", " The mayor")

    def test_it_keeps_empty_sides_for_the_caller_to_judge(self):
        assert quals.split_pair("Who won?<sep>", "<sep>") == ("Who won?", "")


class TestAnswerInSummary:
    def test_it_matches_case_insensitively(self):
        assert quals.answer_in_summary("the MAYOR", SUMMARY)

    def test_it_rejects_an_answer_not_in_the_summary(self):
        assert not quals.answer_in_summary("the council", SUMMARY)

    def test_it_rejects_an_empty_answer(self):
        assert not quals.answer_in_summary("", SUMMARY)
        assert not quals.answer_in_summary("  ", SUMMARY)


class TestSelectPairs:
    def test_it_takes_one_question_per_answer_per_round_best_first(self):
        candidates = [
            pair("q1", "the mayor", -1.0),
            pair("q2", "Monday", -2.0),
            pair("q3", "The Mayor", -0.5),
            pair("q4", "monday", -3.0),
            pair("q5", "a new bridge", -4.0),
        ]
        chosen = quals.select_pairs(candidates, SUMMARY)
        assert [p.question for p in chosen] == ["q3", "q2", "q5", "q1", "q4"]

    def test_it_drops_answers_not_in_the_summary_and_empty_answers(self):
        candidates = [
            pair("q1", "the council", -1.0),
            pair("q2", "", -0.1),
            pair("q3", "Monday", -2),
        ]
        assert [p.question for p in quals.select_pairs(candidates, SUMMARY)] == ["q3"]

    def test_it_spends_a_round_on_an_exact_duplicate_and_then_stops(self):
        candidates = [
            pair("q1", "Monday", -1.0),
            pair("q1", "Monday", -1.5),
            pair("q2", "Monday", -2),
        ]
        assert [p.question for p in quals.select_pairs(candidates, SUMMARY)] == ["q1"]

    def test_it_treats_answers_differing_in_case_as_one_answer(self):
        candidates = [pair("q1", "Monday", -1.0), pair("q1", "monday", -2.0)]
        assert [p.answer for p in quals.select_pairs(candidates, SUMMARY)] == ["Monday"]

    def test_it_stops_at_max_pairs_after_a_whole_round(self):
        candidates = [pair(f"q{i}", "Monday" if i % 2 else "the mayor", -i) for i in range(30)]
        chosen = quals.select_pairs(candidates, SUMMARY, max_pairs=3)
        assert [p.question for p in chosen] == ["q0", "q1", "q2", "q3"]
        assert len(quals.select_pairs(candidates, SUMMARY)) == 10

    def test_it_returns_nothing_for_no_candidates(self):
        assert quals.select_pairs([], SUMMARY) == []


class TestLoadQagen:
    def test_it_raises_for_a_missing_directory(self, tmp_path):
        with pytest.raises(QualsConfigError, match="does not exist"):
            quals.load_qagen(QualsConfig(model_dir=str(tmp_path / "nope")))

    def test_it_raises_for_a_directory_without_model(self, tmp_path):
        with pytest.raises(QualsConfigError, match="config.json"):
            quals.load_qagen(QualsConfig(model_dir=str(tmp_path)))

    def test_it_raises_for_config_without_weights(self, tmp_path):
        (tmp_path / "config.json").write_text("{}")
        with pytest.raises(QualsConfigError, match="weights"):
            quals.load_qagen(QualsConfig(model_dir=str(tmp_path)))

    def test_it_raises_for_an_unknown_dtype(self, qagen_dir):
        with pytest.raises(QualsConfigError, match="dtype"):
            quals.load_qagen(QualsConfig(model_dir=str(qagen_dir), dtype="float8"))

    def test_it_loads_an_inference_only_model(self, qagen):
        assert not qagen.model.training
        assert not any(p.requires_grad for p in qagen.model.parameters())
        assert qagen.start_id == qagen.eos_id == 2


class TestSourceIds:
    def test_it_truncates_keeping_eos_last(self, qagen):
        # The reference's rule: max_source_tokens - 2 tokens (no BOS), then EOS.
        short = replace(qagen, config=replace(qagen.config, max_source_tokens=8))
        ids = quals.source_ids(short, DOCUMENT)
        assert len(ids) == 7
        assert ids[-1] == qagen.eos_id
        assert ids[:6] == quals.source_ids(qagen, DOCUMENT)[:6]

    def test_it_prepends_the_input_prefix(self, qagen):
        prefixed = replace(qagen, config=replace(qagen.config, input_prefix="Who opened "))
        assert quals.source_ids(prefixed, "it") == quals.source_ids(qagen, "Who opened it")


class TestPairLogprobs:
    def test_it_agrees_with_one_full_pass_per_pair(self, qagen):
        targets = [p.target_ids for p in explicit_pairs(qagen)] + [(7, 5, 2), (2,)]
        # batch_size 3 forces several length-sorted chunks: the order must still come back intact.
        chunked = replace(qagen, config=replace(qagen.config, batch_size=3))
        fast = quals.pair_logprobs(chunked, quals.encode_source(qagen, DOCUMENT), targets)
        slow = quals.pair_logprobs_slow(qagen, DOCUMENT, targets)
        for target, f, s in zip(targets, fast, slow, strict=True):
            assert f.shape == (len(target),)
            assert abs(float(f.mean()) - float(s.mean())) < 1e-4
            assert torch.allclose(f, s, atol=1e-4)

    def test_it_shares_the_source_without_copying_it(self, qagen):
        encoded = quals.encode_source(qagen, DOCUMENT)
        cache = quals.shared_source_cache(encoded, 5)
        keys = cache.cross_attention_cache.layers[0].keys
        assert keys.shape[0] == 5
        assert keys.data_ptr() == encoded.cross_kv[0][0].data_ptr()
        assert all(cache.is_updated.values())


class FakeSteps:
    """Decoder stand-in: one fixed log-prob row per step, the same for every beam."""

    def __init__(self, rows: list[dict[int, float]], vocab: int = 6):
        self.tables = [self.table(row, vocab) for row in rows]
        self.calls = 0
        self.kept: list[list[int]] = []

    @staticmethod
    def table(row: dict[int, float], vocab: int) -> torch.Tensor:
        values = torch.full((vocab,), -10.0)
        for token, logprob in row.items():
            values[token] = logprob
        return values

    def next_logprobs(self, last_tokens: torch.Tensor) -> torch.Tensor:
        table = self.tables[min(self.calls, len(self.tables) - 1)]
        self.calls += 1
        return table.expand(last_tokens.shape[0], -1).clone()

    def keep(self, rows: torch.Tensor, inputs: torch.Tensor | None) -> None:
        self.kept.append(rows.tolist())


EOS = 1


def fake_settings(**overrides) -> quals.BeamSettings:
    settings = {"start_id": 0, "eos_id": EOS, "num_beams": 3, "num_groups": 3}
    settings.update({"diversity_strength": 0.5, "min_new_tokens": 0, "max_new_tokens": 2})
    return quals.BeamSettings(**{**settings, **overrides})


class TestDiverseBeamSearch:
    """The reference's rules, one by one, are in test_quals_reference.py."""

    STEP = {EOS: -3.0, 2: -0.9, 3: -1.05, 4: -1.6}

    def test_it_is_plain_repeated_search_without_penalty(self):
        [hyps] = quals.diverse_beam_search(
            FakeSteps([self.STEP]), fake_settings(diversity_strength=0.0)
        )
        # Two free steps, then EOS is forced.
        assert [h.token_ids for h in hyps] == [(2, 2, EOS)] * 3

    def test_it_holds_back_eos_until_min_new_tokens(self):
        steps = FakeSteps([{EOS: -0.1, 2: -1.0, 3: -2.0}])
        settings = fake_settings(num_beams=1, num_groups=1, min_new_tokens=3, max_new_tokens=9)
        [[hyp]] = quals.diverse_beam_search(steps, settings)
        assert hyp.token_ids == (2, 2, 2, EOS)

    def test_it_rejects_beams_not_divisible_into_groups(self):
        with pytest.raises(QualsConfigError):
            quals.diverse_beam_search(FakeSteps([self.STEP]), fake_settings(num_groups=2))


class TestBeamSearchOnTheRandomModel:
    # No parity test with transformers' beam search any more, even for one group: transformers
    # keeps the best num_beams finished hypotheses (a later, better one replaces an earlier
    # one), fairseq the first num_beams to finish, and fairseq forces EOS at the length limit
    # where transformers cuts. TestFinalisation in test_quals_reference.py checks fairseq's rule.

    def test_its_summed_logprobs_are_teacher_forced_logprobs(self, qagen):
        [hyps] = quals.generate_hypotheses(qagen, [SUMMARY])
        assert len(hyps) == qagen.config.num_beams
        slow = quals.pair_logprobs_slow(qagen, SUMMARY, [h.token_ids for h in hyps])
        for hyp, logprobs in zip(hyps, slow, strict=True):
            assert hyp.logprob_sum == pytest.approx(float(logprobs.sum()), abs=1e-4)

    @pytest.mark.parametrize("strength", [0.5, 3.0])
    def test_its_shortlist_of_tokens_changes_nothing(self, qagen, monkeypatch, strength):
        # Each step ranks only a shortlist of tokens per row; the whole vocabulary must agree.
        encoded = quals.encode_source(qagen, SUMMARY)
        settings = replace(
            quals.beam_settings(qagen), num_beams=6, num_groups=3, diversity_strength=strength
        )
        [short] = quals.diverse_beam_search(quals.ModelSteps(qagen, [encoded], 6), settings)
        monkeypatch.setattr(quals, "shortlist_size", lambda vocab, size, groups: vocab)
        [full] = quals.diverse_beam_search(quals.ModelSteps(qagen, [encoded], 6), settings)
        assert [(h.token_ids, h.group) for h in short] == [(h.token_ids, h.group) for h in full]
        assert [h.score for h in short] == pytest.approx([h.score for h in full])
        assert len({h.token_ids for h in short}) > 1


class TestGenerateCandidates:
    def test_it_keeps_hypotheses_with_exactly_one_separator(self, qagen, monkeypatch):
        # A random model almost never writes <sep>: feed the split step known hypotheses instead.
        def ids(text):
            return tuple(qagen.tokenizer(text, add_special_tokens=False)["input_ids"])

        def hypothesis(text, score):
            tokens = ids(text) + (qagen.eos_id,)
            return quals.Hypothesis(tokens, score, 2 * score, (score,) * len(tokens), 0.0, 0)

        good = hypothesis("Who opened the bridge?<sep> the mayor", -0.1)
        hyps = [
            good,
            hypothesis("Who opened the bridge? the mayor", -0.2),
            hypothesis("Who<sep> opened<sep> it", -0.3),
            hypothesis("When did it open?<sep>on Monday", -0.4),
        ]
        monkeypatch.setattr(quals, "diverse_beam_search", lambda steps, settings, inputs: [hyps])
        pairs = quals.generate_candidates(qagen, SUMMARY)
        assert [(p.question, p.answer) for p in pairs] == [
            ("Who opened the bridge?", " the mayor"),
            ("When did it open?", "on Monday"),
        ]
        assert pairs[0].target_ids == good.token_ids
        assert (pairs[0].unnormalised_score, pairs[0].beam_score) == (-0.2, -0.1)

    def test_it_runs_the_real_search_on_the_tiny_model(self, qagen):
        pairs = quals.generate_candidates(qagen, SUMMARY)
        assert all(isinstance(p, QAPair) for p in pairs)


def slow_quals(qagen, document: str, summary: str, pairs: list[QAPair]) -> float:
    """QUALS from its definition: per-pair full passes, mean of (lp_D - lp_S); lp_S the beam
    score (reference mode) or teacher-forced on the summary (clean mode)."""
    selected = quals.select_pairs(pairs, summary, qagen.config.max_pairs)
    targets = [p.target_ids for p in selected]
    under_document = quals.pair_logprobs_slow(qagen, document, targets)
    if qagen.config.mode == "clean":
        under_summary = [float(s.mean()) for s in quals.pair_logprobs_slow(qagen, summary, targets)]
    else:
        under_summary = [p.beam_score for p in selected]
    gaps = [float(d.mean()) - s for d, s in zip(under_document, under_summary, strict=True)]
    return sum(gaps) / len(gaps)


@pytest.fixture
def fixed_candidates(qagen, monkeypatch):
    """Replace generation (steps 1-2) by explicit pairs, so that steps 3-7 truly run."""
    pairs = explicit_pairs(qagen) + [quals.make_pair(qagen, "Who closed it?", "the council", 0.0)]
    monkeypatch.setattr(quals, "generate_candidates", lambda qagen, summary, encoded=None: pairs)
    monkeypatch.setattr(
        quals, "generate_candidates_batch", lambda qagen, summaries: [pairs for _ in summaries]
    )
    return pairs


class TestQualsScore:
    @pytest.mark.parametrize("mode", ["reference", "clean"])
    def test_it_matches_the_slow_definition(self, qagen, fixed_candidates, mode):
        qagen = replace(qagen, config=replace(qagen.config, mode=mode))
        result = quals.quals_score(qagen, DOCUMENT, SUMMARY)
        assert result.value == pytest.approx(
            slow_quals(qagen, DOCUMENT, SUMMARY, fixed_candidates), abs=1e-4
        )
        assert (result.num_candidates, result.num_answerable) == (5, 4)
        assert result.mode == mode

    def test_it_details_every_selected_pair(self, qagen, fixed_candidates):
        result = quals.quals_score(qagen, DOCUMENT, SUMMARY)
        assert [p.answer for p in result.pairs] == [a for _, a in QA]
        for detail, candidate in zip(result.pairs, fixed_candidates, strict=False):
            n = len(candidate.target_ids)
            assert (
                len(detail.tokens)
                == len(detail.logprobs_summary)
                == len(detail.logprobs_document)
                == n
            )
            assert detail.mean_document == pytest.approx(sum(detail.logprobs_document) / n)
            assert detail.contribution == pytest.approx(detail.mean_document - detail.mean_summary)
        assert result.value == pytest.approx(sum(p.contribution for p in result.pairs) / 4)
        assert json.loads(json.dumps(result.to_dict()))["value"] == pytest.approx(result.value)

    def test_it_takes_lp_s_from_the_beam_score_in_reference_mode(self, qagen, monkeypatch):
        pairs = [replace(p, beam_score=-0.25) for p in explicit_pairs(qagen)]
        monkeypatch.setattr(
            quals, "generate_candidates", lambda qagen, summary, encoded=None: pairs
        )
        result = quals.quals_score(qagen, DOCUMENT, SUMMARY)
        assert all(p.mean_summary == -0.25 for p in result.pairs)

    def test_it_returns_no_value_with_a_reason_when_no_pair_fits(self, qagen, monkeypatch):
        stray = [quals.make_pair(qagen, "Who closed it?", "the council", 0.0)]
        monkeypatch.setattr(
            quals, "generate_candidates", lambda qagen, summary, encoded=None: stray
        )
        result = quals.quals_score(qagen, DOCUMENT, SUMMARY)
        assert result.value is None
        assert result.reason == quals.NO_PAIR_REASON
        assert result.pairs == []

    def test_it_runs_end_to_end_on_the_tiny_model(self, qagen):
        result = quals.quals_score(qagen, DOCUMENT, SUMMARY)
        assert result.value is None or math.isfinite(result.value)
        assert (result.value is None) == bool(result.reason)


class TestScoreSummaries:
    def test_it_equals_scoring_each_summary_separately(self, qagen, fixed_candidates):
        shared = quals.score_summaries(qagen, DOCUMENT, [SUMMARY, OTHER_SUMMARY])
        separate = [quals.quals_score(qagen, DOCUMENT, s) for s in (SUMMARY, OTHER_SUMMARY)]
        for a, b in zip(shared, separate, strict=True):
            assert a.value == pytest.approx(b.value, abs=1e-5)
            assert [p.question for p in a.pairs] == [p.question for p in b.pairs]
