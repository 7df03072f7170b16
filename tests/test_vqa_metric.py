"""The official VQA accuracy on hand-worked fixtures: one test per rule and quirk of vqaEval.py."""
import pytest

from vln.errors import DataFormatError
from vqa.metric import (gqa_accuracy, index_results, normalize_prediction, process_digit_article,
                        process_punctuation, question_accuracy, vqa_accuracy)


def answers(*texts, ids=None):
    ids = ids or list(range(1, len(texts) + 1))
    return [{"answer": t, "answer_confidence": "yes", "answer_id": i} for t, i in zip(texts, ids)]


def test_prediction_is_lower_cased_so_Yes_scores_against_ten_yes():
    # siblings.md says 0; the official code normalises the prediction always
    assert question_accuracy("Yes", answers(*["yes"] * 10)) == 1.0


def test_leave_one_out_over_ten_answers():
    others = ["dog", "bird", "cow", "pig", "fox", "owl", "ant"]
    # 3 of 10 say cat: the 3 cat records see 2 others (2/3), the 7 others see 3 (1) -> 0.9
    assert question_accuracy("cat", answers(*["cat"] * 3, *others)) == pytest.approx(0.9)
    # 2 cats: (2 * 1/3 + 8 * 2/3) / 10 = 0.6 ; 1 cat: 9 * 1/3 / 10
    assert question_accuracy("cat", answers(*["cat"] * 2, *others, "emu")) == pytest.approx(0.6)
    assert question_accuracy("cat", answers("cat", *others, "emu", "elk")) == pytest.approx(0.3)
    assert question_accuracy("cat", answers(*["cat"] * 4, *others[:6])) == 1.0


def test_leave_one_out_compares_whole_answer_dicts():
    # two records identical as dicts (same id) both drop out when either is "the one left out"
    recs = answers("cat", "cat", "dog", "bird", "cow", "pig", "fox", "owl", "ant", "emu", ids=[1, 1, 3, 4, 5, 6, 7, 8, 9, 10])
    assert question_accuracy("cat", recs) == pytest.approx(8 * (2 / 3) / 10)   # 0.5333, not 0.6
    distinct = answers("cat", "cat", "dog", "bird", "cow", "pig", "fox", "owl", "ant", "emu")
    assert question_accuracy("cat", distinct) == pytest.approx(0.6)


def test_ground_truth_is_not_digit_or_article_normalised():
    assert question_accuracy("two", answers(*["two"] * 10)) == 0.0      # prediction becomes "2"
    assert question_accuracy("2", answers(*["two"] * 10)) == 0.0
    assert question_accuracy("two", answers(*["2"] * 10)) == 1.0
    assert question_accuracy("a dog", answers(*["a dog"] * 5, *["dog"] * 5)) == 1.0   # 5 "dog" match


def test_ground_truth_punctuation_only_when_answers_differ():
    assert question_accuracy("yes.", answers(*["yes."] * 10)) == 0.0    # all identical: "yes." kept
    assert question_accuracy("yes.", answers(*["yes."] * 9, "no")) == 1.0  # differ: gt "yes." -> "yes"


def test_ground_truth_is_not_stripped():
    assert question_accuracy("yes", answers(*[" yes"] * 5, *["no"] * 5)) == 0.0
    assert question_accuracy(" yes\n", answers(*["yes"] * 10)) == 1.0     # the prediction is


def test_punctuation_removed_or_spaced_by_the_original_text():
    assert process_punctuation("yes-no") == "yes no"
    assert process_punctuation("yes - no") == "yes  no"
    assert process_punctuation("a-b, c") == "a b c"          # ", " touches a space: removed; "-" spaced
    assert process_punctuation("a-b ,c") == "a b c"
    assert process_punctuation("1,000-2") == "10002"         # digit,digit anywhere: every mark removed
    assert process_punctuation("(left)") == " left "
    assert process_punctuation("3.5 ft.") == "3.5 ft"        # periods before a digit stay
    assert process_punctuation("a.b") == "ab"
    assert process_punctuation("don't") == "don't"           # apostrophes are not punctuation here


def test_period_rule_caps_at_32_substitutions():
    assert process_punctuation("." * 40) == "." * 8
    assert process_punctuation("a." * 33) == "a" * 32 + "a."


def test_digit_article_contractions():
    assert process_digit_article("The Two Dogs") == "2 dogs"
    assert process_digit_article("none") == "0"
    assert process_digit_article("an  apple") == "apple"
    assert process_digit_article("dont know") == "don't know"
    assert process_digit_article("ten eleven") == "10 eleven"
    assert process_digit_article("Im") == "im"                # lower-cased before the table ("Im" unreachable)
    assert normalize_prediction("Three\tApples!") == "3 apples"


def test_summary_rounding_and_types():
    anns = [
        {"question_id": 1, "question_type": "is the", "answer_type": "yes/no", "answers": answers(*["yes"] * 10)},
        {"question_id": 2, "question_type": "how many", "answer_type": "number",
         "answers": answers("2", "two", "dog", "bird", "cow", "pig", "fox", "owl", "ant", "emu")},
        {"question_id": 3, "question_type": "is the", "answer_type": "yes/no", "answers": answers(*["no"] * 10)},
    ]
    out = vqa_accuracy(anns, {1: "yes", 2: "two", 3: "yes"})
    # q2: prediction "2" matches one record: 9 * (1/3) / 10 = 0.3
    assert out["perQuestion"] == {1: 100.0, 2: 30.0, 3: 0.0}
    assert out["overall"] == round(100 * (1 + 0.3 + 0) / 3, 2) == 43.33
    assert out["perAnswerType"] == {"yes/no": 50.0, "number": 30.0}
    assert out["perQuestionType"] == {"is the": 50.0, "how many": 30.0}


def test_results_must_cover_exactly_the_annotation_ids():
    assert index_results([{"question_id": 1, "answer": "a"}, {"question_id": 1, "answer": "b"}], [1]) == {1: "b"}
    with pytest.raises(DataFormatError, match="1 question ids unanswered"):
        index_results([{"question_id": 1, "answer": "a"}], [1, 2], "R.json")
    with pytest.raises(DataFormatError, match="1 not in the annotations"):
        index_results([{"question_id": 1, "answer": "a"}, {"question_id": 9, "answer": "a"}], [1])
    with pytest.raises(DataFormatError, match="answer"):
        index_results([{"question_id": 1, "answer": 3}], [1])
    with pytest.raises(DataFormatError, match="list"):
        index_results({"question_id": 1}, [1])


def test_gqa_exact_match():
    assert gqa_accuracy({"a": "yes", "b": "Red"}, {"a": "yes", "b": "red", "c": "no"}) == pytest.approx(100 / 3)
