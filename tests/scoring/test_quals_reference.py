"""QUALS reference mode, rule by rule (QUALS.md): hand-checked beams through a fake decoder, then
the whole pipeline on a tiny QAGen trained in the session (tests/scoring/conftest.py)."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from scoring import quals
from scoring.quals import Hypothesis, QAPair, QualsConfig, QualsConfigError

from .qagen_fixture import QA_TASK, build_tokenizer

START, EOS = 0, 1
VOCAB = 8


class FakeSteps:
    """Decoder stand-in: each row's next log-probs depend on its last token (`rule`), so the
    expected beams can be worked out by hand. Unlisted tokens get -50."""

    def __init__(self, rule: dict[int, dict[int, float]], vocab: int = VOCAB):
        self.table = torch.full((vocab, vocab), -50.0)
        for last, row in rule.items():
            for token, logprob in row.items():
                self.table[last, token] = logprob
        self.calls = 0
        self.kept: list[list[int]] = []

    def next_logprobs(self, last_tokens: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.table[last_tokens]

    def keep(self, rows: torch.Tensor, inputs: torch.Tensor | None) -> None:
        self.kept.append(rows.tolist())


def settings(**overrides) -> quals.BeamSettings:
    values = {"start_id": START, "eos_id": EOS, "num_beams": 3, "num_groups": 3}
    values.update({"diversity_strength": 0.5, "min_new_tokens": 0, "max_new_tokens": 5})
    return quals.BeamSettings(**{**values, **overrides})


def search(rule, **overrides) -> tuple[list[Hypothesis], FakeSteps]:
    steps = FakeSteps(rule)
    [hyps] = quals.diverse_beam_search(steps, settings(**overrides))
    return hyps, steps


# Step 0 from the start token. By hand (penalty 0.5 per earlier candidate at this step):
#   group 0: 2 (-1.0), 3 (-1.2)            -> counts 2:1 3:1
#   group 1: 4 (-1.3), 2 (-1.0-0.5=-1.5)   -> counts 2:2 3:1 4:1
#   group 2: 3 (-1.2-0.5=-1.7), 4 (-1.3-0.5=-1.8); 2 is at -2.0
# Interleaved: 2 3 | 4 2 | 3 4 -> [2, 4, 3, 3, 2, 4]; beams: [2], [4], [3].
FIRST = {2: -1.0, 3: -1.2, 4: -1.3, 5: -3.0}
# Step 1, by beam. Beam [2] (-1.0): 6 (-1.1), 7 (-1.2). Beam [4] (-1.3) in group 1, EOS
# penalised once: -1.3-0.1-0.5 = -1.9... see TestFinalisation for the rest.
SECOND = {
    2: {EOS: -2.0, 6: -0.1, 7: -0.2},
    4: {EOS: -0.1, 6: -3.0, 7: -3.5},
    3: {EOS: -0.05, 6: -3.0, 7: -3.6},
}


class TestDiverseCandidates:
    def step0(self, **overrides):
        logprobs = FakeSteps({START: FIRST}).next_logprobs(torch.zeros(3, dtype=torch.long))
        zeros = torch.zeros(1, 3)
        return quals.diverse_candidates(logprobs[None], zeros, zeros, 0, settings(**overrides))

    def test_it_counts_both_candidates_of_every_earlier_group(self):
        # Counting only group 0's best (2) would leave 3 at -1.2 for group 1, ahead of 4.
        candidates = self.step0()
        assert candidates.tokens.tolist() == [[2, 4, 3, 3, 2, 4]]
        assert candidates.scores[0].tolist() == pytest.approx([-1.0, -1.3, -1.7, -1.2, -1.5, -1.8])

    def test_it_interleaves_first_candidates_then_second_ones(self):
        candidates = self.step0()
        # Position p is candidate p // 3 of group p % 3; one beam per group at step 0.
        assert candidates.beams.tolist() == [[0, 1, 2, 0, 1, 2]]

    def test_it_is_plain_top_two_per_group_without_penalty(self):
        candidates = self.step0(diversity_strength=0.0)
        assert candidates.tokens.tolist() == [[2, 2, 2, 3, 3, 3]]

    def test_it_ranks_a_shortlist_that_equals_the_whole_vocabulary(self):
        # A vocabulary larger than the shortlist (2 x 3 tokens): 60 near-equal tokens.
        logprobs = -1.0 - torch.arange(60.0)[None, None, :].expand(1, 3, 60) / 100
        zeros = torch.zeros(1, 3)
        short = quals.diverse_candidates(logprobs.clone(), zeros, zeros, 0, settings())
        # By hand: group 0 takes tokens 0, 1; group 1 then 2, 3; group 2 then 4, 5 (the
        # penalised 0..3 fell below -1.05).
        assert short.tokens.tolist() == [[0, 2, 4, 1, 3, 5]]


class TestPenalisedScores:
    def test_it_accumulates_penalised_scores_and_penalises_eos(self):
        # Step 0 as above, then EOS forced (max 1). Group g's EOS carries g x 0.5 penalty.
        rule = {START: FIRST, 2: {EOS: -0.5}, 4: {EOS: -0.5}, 3: {EOS: -0.5}}
        hyps, _ = search(rule, max_new_tokens=1)
        assert [h.token_ids for h in hyps] == [(2, EOS), (4, EOS), (3, EOS)]
        assert [h.unnormalised_score for h in hyps] == pytest.approx([-1.5, -2.3, -3.2])
        assert [h.score for h in hyps] == pytest.approx([-0.75, -1.15, -1.6])
        assert hyps[2].token_scores == pytest.approx((-1.7, -1.5))
        # Without the penalty: model log-probs only.
        assert [h.logprob_sum for h in hyps] == pytest.approx([-1.5, -1.8, -1.7])

    def test_it_normalises_by_the_length_with_eos(self):
        rule = {START: FIRST, 2: {EOS: -0.5}, 4: {EOS: -0.5}, 3: {EOS: -0.5}}
        hyps, _ = search(rule, max_new_tokens=1, length_penalty=2.0)
        assert hyps[0].score == pytest.approx(-1.5 / 4)


class TestFinalisation:
    # Step 1 by hand (beams [2] -1.0 in group 0, [4] -1.3 in group 1, [3] -1.7 in group 2):
    #   group 0: 6 (-1.1), 7 (-1.2)                      -> counts 6:1 7:1
    #   group 1: EOS (-1.3-0.1 = -1.4), 6 (-4.3-0.5)      -> counts EOS:1 6:2 7:1
    #   group 2: EOS (-1.7-0.05-0.5 = -2.25), 6 (-5.7)
    # Interleaved: 6 EOS EOS | 7 6 6. Both EOS are among the first 3: finished.
    # Next beams, the first 3 others: [2 6] (-1.1), [2 7] (-1.2), [4 6] (-4.8): beam [2]'s
    # second candidate moves to group 1.
    def test_it_finishes_eos_candidates_among_the_first_beams(self):
        rule = {START: FIRST, **SECOND, 6: {EOS: -9.0}, 7: {EOS: -9.0}}
        hyps, steps = search(rule, max_new_tokens=2)
        by_tokens = {h.token_ids: h for h in hyps}
        assert by_tokens[(4, EOS)].score == pytest.approx(-0.7)
        assert by_tokens[(3, EOS)].score == pytest.approx(-1.125)

    def test_it_moves_lineages_between_groups_after_a_finished_candidate(self):
        rule = {START: FIRST, **SECOND, 6: {EOS: -9.0}, 7: {EOS: -9.0}}
        hyps, steps = search(rule, max_new_tokens=2)
        # Rows kept after step 0: [2] [4] [3]; after step 1: beam 0 twice, then beam 1.
        assert steps.kept == [[0, 1, 2], [0, 0, 1]]
        assert {h.token_ids for h in hyps} == {(4, EOS), (3, EOS), (2, 6, EOS)}

    def test_it_ignores_eos_beyond_the_first_beams(self):
        # Step 2: group 0 ([2 6], -1.1): 7 (-1.6), EOS (-1.7); group 1 ([2 7], -1.2): EOS
        # (-1.2-0.2-0.5 = -1.9), 6 (-2.2); group 2 ([4 6], -4.8): 7 (-5.8), EOS (-6.4).
        # Interleaved: 7 EOS 7 | EOS 6 EOS: group 0's better EOS (-1.7) is at place 3, so only
        # [2 7 EOS] finishes, the third one, and the search stops with live beams.
        after6 = {7: -0.5, EOS: -0.6, 5: -3.0}
        after7 = {EOS: -0.2, 6: -1.0, 5: -3.0}
        hyps, steps = search({START: FIRST, **SECOND, 6: after6, 7: after7})
        assert [h.token_ids for h in hyps] == [(2, 7, EOS), (4, EOS), (3, EOS)]
        assert hyps[0].score == pytest.approx(-1.9 / 3)
        assert steps.calls == 3

    def test_it_finishes_in_candidate_order_not_score_order(self):
        # Step 2: group 0 ([2 6], -1.1): EOS (-2.6), 7 (-2.7); group 1 ([2 7], -1.2): EOS
        # (-1.9). One place left: the first EOS takes it although the second is better.
        after6 = {EOS: -1.5, 7: -1.6, 5: -3.0}
        after7 = {EOS: -0.2, 6: -1.0, 5: -3.0}
        hyps, _ = search({START: FIRST, **SECOND, 6: after6, 7: after7})
        assert (2, 6, EOS) in [h.token_ids for h in hyps]
        assert (2, 7, EOS) not in [h.token_ids for h in hyps]
        assert next(h.score for h in hyps if h.token_ids == (2, 6, EOS)) == pytest.approx(-2.6 / 3)

    def test_it_returns_all_beams_best_normalised_score_first(self):
        hyps, _ = search({START: FIRST, **SECOND, 6: {EOS: -9.0}, 7: {EOS: -9.0}})
        assert len(hyps) == 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


class TestLengthLimits:
    def test_it_forbids_eos_before_min_new_tokens(self):
        rule = {START: {EOS: -0.1, 2: -1.0, 3: -2.0}, 2: {EOS: -0.1, 2: -1.0, 3: -2.0}}
        hyps, _ = search(rule, num_beams=1, num_groups=1, min_new_tokens=3, max_new_tokens=9)
        assert hyps[0].token_ids == (2, 2, 2, EOS)

    def test_it_forces_eos_after_max_new_tokens(self):
        rule = {START: {EOS: -9.0, 2: -1.0, 3: -2.0}, 2: {EOS: -9.0, 2: -1.0, 3: -2.0}}
        hyps, _ = search(rule, num_beams=1, num_groups=1, max_new_tokens=4)
        assert hyps[0].token_ids == (2, 2, 2, 2, EOS)
        assert hyps[0].score == pytest.approx((-4.0 - 9.0) / 5)

    def test_it_never_generates_pad(self):
        rule = {START: {5: -0.1, 2: -1.0, 3: -2.0}, 2: {EOS: -0.1}}
        hyps, _ = search(rule, num_beams=1, num_groups=1, max_new_tokens=3, pad_id=5)
        assert 5 not in hyps[0].token_ids


def wide_rule(vocab: int, eos: float) -> dict[int, dict[int, float]]:
    """Every token followed by the same row: EOS at `eos`, token t at -1 - t / 1000."""
    row = {t: -1.0 - t / 1000 for t in range(2, vocab)}
    row[EOS] = eos
    return dict.fromkeys(range(vocab), row)


class TestAtSixtyBeams:
    REAL = {"num_beams": 60, "num_groups": 60, "min_new_tokens": 8, "max_new_tokens": 60}

    def test_it_forces_all_sixty_to_end_after_sixty_tokens(self):
        steps = FakeSteps(wide_rule(200, eos=-50.0), vocab=200)
        [hyps] = quals.diverse_beam_search(steps, settings(**self.REAL))
        assert len(hyps) == 60
        assert {len(h.token_ids) for h in hyps} == {61}
        assert steps.calls == 61
        assert len({h.token_ids for h in hyps}) == 60

    def test_it_stops_at_sixty_finished_with_eos_not_before_eight_tokens(self):
        steps = FakeSteps(wide_rule(200, eos=-0.01), vocab=200)
        [hyps] = quals.diverse_beam_search(steps, settings(**self.REAL))
        assert len(hyps) == 60
        assert min(len(h.token_ids) for h in hyps) == 9
        assert all(h.token_ids[-1] == EOS and EOS not in h.token_ids[:-1] for h in hyps)
        # EOS is the best token: the search ends long before the length limit.
        assert steps.calls < 30

    def test_it_gives_each_input_of_a_batch_its_own_sixty(self):
        rule = wide_rule(200, eos=-0.01)
        alone = quals.diverse_beam_search(FakeSteps(rule, 200), settings(**self.REAL))
        both = quals.diverse_beam_search(FakeSteps(rule, 200), settings(**self.REAL), inputs=2)
        assert [h.token_ids for h in both[0]] == [h.token_ids for h in alone[0]]
        assert [h.token_ids for h in both[1]] == [h.token_ids for h in alone[0]]


def pair(question: str, answer: str, unnormalised: float, beam: float = -1.0) -> QAPair:
    return QAPair(question, answer, (5, EOS), unnormalised, beam, (beam, beam))


SUMMARY = "The mayor of Springfield opened a new bridge on Monday."


class TestSelectPairs:
    def test_it_spends_an_answers_turn_on_a_case_insensitive_duplicate(self):
        candidates = [
            pair("When?", "Monday", -1.0),
            pair("WHEN?", "monday", -2.0),
            pair("What day?", "Monday", -3.0),
            pair("Who?", "the mayor", -1.5),
            pair("Whom?", "the mayor", -2.5),
            pair("Which?", "The Mayor", -3.5),
        ]
        chosen = quals.select_pairs(candidates, SUMMARY)
        # Round 2: "WHEN?" uses Monday's turn, so "What day?" waits for round 3.
        assert [p.question for p in chosen] == ["When?", "Who?", "Whom?", "What day?", "Which?"]

    def test_it_stops_after_a_round_that_adds_nothing(self):
        candidates = [
            pair("When?", "Monday", -1.0),
            pair("when?", "Monday", -2.0),
            pair("What day?", "Monday", -3.0),
        ]
        assert [p.question for p in quals.select_pairs(candidates, SUMMARY)] == ["When?"]

    def test_it_checks_the_cap_between_rounds_only(self):
        words = SUMMARY.rstrip(".").split()[:10] + ["Spring", "bridge on"]
        candidates = [pair(f"q{i}", word, -float(i)) for i, word in enumerate(words)]
        candidates += [pair(f"again {i}", word, -20.0 - i) for i, word in enumerate(words)]
        chosen = quals.select_pairs(candidates, SUMMARY, max_pairs=10)
        assert [p.question for p in chosen] == [f"q{i}" for i in range(12)]

    def test_it_starts_another_round_below_the_cap(self):
        candidates = [pair(f"q{i}", "Monday" if i % 2 else "the mayor", -i) for i in range(30)]
        chosen = quals.select_pairs(candidates, SUMMARY, max_pairs=3)
        assert [p.question for p in chosen] == ["q0", "q1", "q2", "q3"]
        assert len(quals.select_pairs(candidates, SUMMARY)) == 10

    def test_it_sorts_by_the_unnormalised_penalised_score(self):
        # The normalised beam scores say the opposite order.
        candidates = [pair("long?", "Monday", -3.0, beam=-0.3), pair("short?", "mayor", -2.0)]
        assert [p.question for p in quals.select_pairs(candidates, SUMMARY)] == ["short?", "long?"]

    def test_it_matches_raw_answers_case_insensitively_and_rejects_empty_ones(self):
        candidates = [
            pair("a", "THE MAYOR", -1.0),
            pair("b", " on Monday", -2.0),
            pair("c", "Monday ", -3.0),  # no "Monday " in the summary: it ends "Monday."
            pair("d", "", -0.5),  # the reference accepts it; a documented deviation
        ]
        assert [p.question for p in quals.select_pairs(candidates, SUMMARY)] == ["a", "b"]


class TestPairFromHypothesis:
    def test_it_splits_raw_text_and_keeps_the_beam_scores(self, trained_qagen):
        tokenizer = trained_qagen.tokenizer
        ids = tokenizer("Who won?<sep> the team", add_special_tokens=False)["input_ids"]
        hypothesis = Hypothesis((*ids, 2), -0.4, -2.0, (-0.2,) * (len(ids) + 1), -1.5, 3)
        pair = quals.pair_from_hypothesis(trained_qagen, hypothesis)
        assert (pair.question, pair.answer) == ("Who won?", " the team")
        assert pair.target_ids == hypothesis.token_ids
        assert (pair.unnormalised_score, pair.beam_score) == (-2.0, -0.4)

    def test_it_rejects_none_or_two_separators(self, trained_qagen):
        for text in ("Who won? the team", "Who<sep> won?<sep> the team"):
            ids = trained_qagen.tokenizer(text, add_special_tokens=False)["input_ids"]
            hypothesis = Hypothesis((*ids, 2), -0.4, -2.0, (), -1.5, 0)
            assert quals.pair_from_hypothesis(trained_qagen, hypothesis) is None


class TestInputs:
    def qagen(self, positions: int = 1024) -> quals.QAGen:
        tokenizer = build_tokenizer()
        model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=positions))
        return quals.QAGen(model=model, tokenizer=tokenizer, config=QualsConfig(model_dir="x"))

    def test_it_adds_no_bos_and_ends_with_eos(self):
        qagen = self.qagen()
        plain = qagen.tokenizer(SUMMARY, add_special_tokens=False)["input_ids"]
        assert quals.source_ids(qagen, SUMMARY) == plain + [qagen.eos_id]
        assert qagen.tokenizer(SUMMARY)["input_ids"][0] == qagen.tokenizer.bos_token_id

    def test_it_truncates_a_document_to_1022_tokens_and_eos(self):
        qagen = self.qagen()
        text = " ".join([SUMMARY] * 200)
        plain = qagen.tokenizer(text, add_special_tokens=False)["input_ids"]
        ids = quals.source_ids(qagen, text)
        assert len(plain) > 1100
        assert ids == plain[:1022] + [qagen.eos_id]

    def test_it_keeps_within_the_models_positions(self):
        ids = quals.source_ids(self.qagen(positions=100), " ".join([SUMMARY] * 50))
        assert len(ids) == 99

    def test_it_encodes_sources_without_bos(self, trained_qagen):
        encoded = quals.encode_source(trained_qagen, SUMMARY)
        plain = trained_qagen.tokenizer(SUMMARY, add_special_tokens=False)["input_ids"]
        assert encoded.input_ids[0].tolist() == plain + [trained_qagen.eos_id]


class TestMakePair:
    # A byte-level BPE in which " strutConnector" is a plain token, as in the paper's GPT-2 BPE,
    # trained on text where it is always followed by "The": encoding the joined text gives one
    # token across the separator, the reference's BPE(q) + BPE(sep) + BPE(a) does not.
    CORPUS = ["Who opened it? strutConnectorThe mayor"] * 50 + ["Who? strutConnector"] * 20

    def qagen(self) -> quals.QAGen:
        tokenizer = build_tokenizer(vocab_size=400, corpus=self.CORPUS)
        config = QualsConfig(model_dir="x", separator=" strutConnector")
        return quals.QAGen(model=None, tokenizer=tokenizer, config=config)

    def test_it_encodes_question_separator_and_answer_each_on_its_own(self):
        qagen = self.qagen()
        made = quals.make_pair(qagen, "Who opened it?", "The mayor")
        tokens = qagen.tokenizer.convert_ids_to_tokens(list(made.target_ids))
        # By hand: the answer starts without a space ("Th", "e"), the separator stays whole.
        assert tokens == ["Who", "Ġopened", "Ġit", "?", "ĠstrutConnector", "Th", "e", "Ġmayor"] + [
            "</s>"
        ]
        joined = qagen.tokenizer("Who opened it? strutConnectorThe mayor", add_special_tokens=False)
        assert "ĠstrutConnectorThe" in qagen.tokenizer.convert_ids_to_tokens(joined["input_ids"])

    def test_its_target_decodes_and_splits_back_to_the_pair(self):
        qagen = self.qagen()
        made = quals.make_pair(qagen, "Who opened it?", "The mayor")
        text = qagen.tokenizer.decode(list(made.target_ids[:-1]))
        assert quals.split_pair(text, " strutConnector") == ("Who opened it?", "The mayor")


class TestModes:
    def test_it_defaults_to_reference_mode(self):
        assert QualsConfig(model_dir="x").mode == "reference"

    def test_it_records_the_mode_and_the_weights(self, trained_qagen, trained_qagen_dir):
        assert trained_qagen.config.version_string().startswith("QUALS reference;")
        clean = replace(trained_qagen.config, mode="clean")
        assert clean.version_string().startswith("QUALS clean;")
        fingerprint = quals.model_fingerprint(trained_qagen_dir)
        assert trained_qagen.fingerprint == fingerprint and len(fingerprint) == 12
        assert trained_qagen.version_string().endswith(f"weights {fingerprint}")

    def test_its_fingerprint_changes_with_the_weights(self, trained_qagen_dir, tmp_path):
        for path in trained_qagen_dir.iterdir():
            (tmp_path / path.name).write_bytes(path.read_bytes())
        assert quals.model_fingerprint(tmp_path) == quals.model_fingerprint(trained_qagen_dir)
        weights = tmp_path / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
        assert quals.model_fingerprint(tmp_path) != quals.model_fingerprint(trained_qagen_dir)

    def test_it_refuses_an_unknown_mode(self, trained_qagen_dir):
        with pytest.raises(QualsConfigError, match="mode"):
            quals.load_qagen(QualsConfig(model_dir=str(trained_qagen_dir), mode="fast"))

    def test_its_clean_mode_teacher_forces_lp_s(self, trained_qagen):
        clean = replace(trained_qagen, config=replace(trained_qagen.config, mode="clean"))
        result = quals.quals_score(clean, DOCUMENT, PASSAGES[0])
        assert result.mode == "clean" and result.pairs
        selected = selected_targets(clean, PASSAGES[0])
        slow = quals.pair_logprobs_slow(clean, PASSAGES[0], selected)
        for detail, logprobs in zip(result.pairs, slow, strict=True):
            assert detail.mean_summary == pytest.approx(float(logprobs.mean()), abs=1e-4)


# ---------------------------------------------------------------- the trained tiny QAGen

PASSAGES = list(QA_TASK)
DOCUMENT = " ".join(PASSAGES)


@pytest.fixture(scope="module")
def trained_qagen(trained_qagen_dir):
    return quals.load_qagen(QualsConfig(model_dir=str(trained_qagen_dir)))


def selected_targets(qagen, summary: str) -> list[tuple[int, ...]]:
    candidates = quals.generate_candidates(qagen, summary)
    return [p.target_ids for p in quals.select_pairs(candidates, summary, qagen.config.max_pairs)]


class TestTrainedQagen:
    def test_it_selects_the_trained_pairs(self, trained_qagen):
        result = quals.quals_score(trained_qagen, DOCUMENT, PASSAGES[0])
        chosen = {(p.question, p.answer) for p in result.pairs}
        assert set(QA_TASK[PASSAGES[0]]) <= chosen
        assert result.num_candidates >= len(result.pairs) > 0
        assert math.isfinite(result.value)

    def test_its_lp_s_is_the_normalised_beam_score(self, trained_qagen):
        candidates = quals.generate_candidates(trained_qagen, PASSAGES[0])
        selected = quals.select_pairs(candidates, PASSAGES[0])
        result = quals.quals_score(trained_qagen, DOCUMENT, PASSAGES[0])
        assert [d.mean_summary for d in result.pairs] == [p.beam_score for p in selected]
        for detail, chosen in zip(result.pairs, selected, strict=True):
            assert detail.logprobs_summary == pytest.approx(list(chosen.token_scores))
            assert detail.contribution == detail.mean_document - chosen.beam_score
        assert result.value == pytest.approx(
            sum(p.contribution for p in result.pairs) / len(result.pairs)
        )

    def test_its_beams_sum_the_models_log_probs(self, trained_qagen):
        hyps = quals.generate_hypotheses(trained_qagen, [PASSAGES[1]])[0]
        assert len(hyps) == 60
        slow = quals.pair_logprobs_slow(trained_qagen, PASSAGES[1], [h.token_ids for h in hyps])
        for hyp, logprobs in zip(hyps, slow, strict=True):
            assert hyp.logprob_sum == pytest.approx(float(logprobs.sum()), abs=1e-4)
            assert 9 <= len(hyp.token_ids) <= 61
            assert sum(hyp.token_scores) == pytest.approx(hyp.unnormalised_score, abs=1e-4)

    def test_its_fast_document_scores_equal_one_pass_per_pair(self, trained_qagen):
        targets = selected_targets(trained_qagen, PASSAGES[2])
        assert targets
        encoded = quals.encode_source(trained_qagen, DOCUMENT)
        fast = quals.pair_logprobs(trained_qagen, encoded, targets)
        slow = quals.pair_logprobs_slow(trained_qagen, DOCUMENT, targets)
        for f, s in zip(fast, slow, strict=True):
            assert torch.allclose(f, s, atol=1e-4)

    @pytest.mark.parametrize("batch", [8, 16])
    def test_it_generates_in_batches_as_one_at_a_time(self, trained_qagen, batch):
        summaries = PASSAGES + [p.lower() for p in PASSAGES]
        config = replace(trained_qagen.config, generation_batch_size=batch)
        batched = quals.generate_hypotheses(replace(trained_qagen, config=config), summaries)
        for summary, found in zip(summaries, batched, strict=True):
            [alone] = quals.generate_hypotheses(trained_qagen, [summary])
            assert [h.token_ids for h in found] == [h.token_ids for h in alone]
            assert [h.score for h in found] == pytest.approx([h.score for h in alone], abs=1e-4)

    def test_it_scores_summaries_of_one_document_as_separately(self, trained_qagen):
        together = quals.score_summaries(trained_qagen, DOCUMENT, PASSAGES[:3])
        for summary, result in zip(PASSAGES[:3], together, strict=True):
            alone = quals.quals_score(trained_qagen, DOCUMENT, summary)
            assert result.value == pytest.approx(alone.value, abs=1e-4)
            assert [p.question for p in result.pairs] == [p.question for p in alone.pairs]

    def test_it_gives_no_score_with_a_reason_when_no_answer_fits(self, trained_qagen):
        result = quals.quals_score(trained_qagen, DOCUMENT, "42.")
        assert result.value is None
        assert result.reason == quals.NO_PAIR_REASON
        assert result.to_dict()["value"] is None


def previous_candidates(logprobs, cum, raw, step, s):
    """diverse_candidates as it was before its groups' results were stacked once per step (each
    group wrote into preallocated tensors): kept to show that the change alters no bit."""
    inputs, beams, vocab = logprobs.shape
    groups, size = s.num_groups, beams // s.num_groups
    short = quals.shortlist_size(vocab, size, groups)
    values, tokens = logprobs.topk(short, dim=-1)
    values = values.view(inputs, size, groups, short).transpose(1, 2)
    tokens = tokens.view(inputs, size, groups, short).transpose(1, 2)
    base = cum.view(inputs, size, groups).transpose(1, 2)
    base_raw = raw.view(inputs, size, groups).transpose(1, 2)
    if step == 0:
        values, tokens, base, base_raw = (x[:, :, :1] for x in (values, tokens, base, base_raw))
    width = values.shape[2] * short
    take = min(2 * size, values.shape[2] * vocab - 1)
    values = values.reshape(inputs, groups, width)
    tokens = tokens.reshape(inputs, groups, width)
    base = base[..., None].expand(-1, -1, -1, short).reshape(inputs, groups, width)
    counts = logprobs.new_zeros(inputs, vocab)
    ones = logprobs.new_ones(inputs, take)
    top_scores = logprobs.new_empty(inputs, groups, take)
    top_index = torch.empty(inputs, groups, take, dtype=torch.long)
    for g in range(groups):
        group_values, group_tokens = values[:, g], tokens[:, g]
        if g and s.diversity_strength:
            group_values = group_values - s.diversity_strength * counts.gather(1, group_tokens)
        top = (group_values + base[:, g]).topk(take, dim=1)
        top_scores[:, g], top_index[:, g] = top.values, top.indices
        counts.scatter_add_(1, group_tokens.gather(1, top.indices), ones)
    within = top_index // short
    group_ids = torch.arange(groups)[None, :, None]
    raw_scores = values.gather(2, top_index) + base_raw.gather(2, within)

    def interleaved(x):
        return x.transpose(1, 2).reshape(inputs, take * groups)

    return quals.Candidates(
        scores=interleaved(top_scores),
        tokens=interleaved(tokens.gather(2, top_index)),
        beams=interleaved(within * groups + group_ids),
        raw=interleaved(raw_scores),
    )


class TestStackedGroups:
    @pytest.mark.parametrize("step", [0, 3])
    @pytest.mark.parametrize("strength", [0.5, 0.3])
    def test_it_gives_the_previous_candidates_bit_for_bit(self, step, strength):
        torch.manual_seed(step)
        logprobs = torch.log_softmax(torch.randn(2, 6, 40) * 3, dim=-1)
        cum, raw = torch.randn(2, 6), torch.randn(2, 6)
        s = settings(num_beams=6, num_groups=3, diversity_strength=strength)
        ours = quals.diverse_candidates(logprobs, cum, raw, step, s)
        before = previous_candidates(logprobs, cum, raw, step, s)
        for name in ("scores", "tokens", "beams", "raw"):
            assert torch.equal(getattr(ours, name), getattr(before, name)), name

    def test_it_finds_the_previous_hypotheses_on_the_trained_model(
        self, trained_qagen, monkeypatch
    ):
        config = replace(trained_qagen.config, generation_batch_size=2)
        batched = replace(trained_qagen, config=config)
        ours = quals.generate_hypotheses(batched, PASSAGES[:3])
        monkeypatch.setattr(quals, "diverse_candidates", previous_candidates)
        before = quals.generate_hypotheses(batched, PASSAGES[:3])
        assert ours == before
        assert all(len(found) == 60 for found in ours)
